"""The parent process, the judge: never imports torch nor the submission's code.

`evaluate` judges one submission: it starts the two sandboxed stages (`runner`, `sandbox`),
holds the test labels and this evaluation's permutation of the images (`data`), validates what
stage 2 returns, and computes accuracy, the claims, the score and the record. `report` renders
a record for the terminal.
"""
