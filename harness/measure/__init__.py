"""Stage 2, the trusted measuring process: harness code only, never the submission's.

It reads the exported program that stage 1 wrote (`archive`), checks every operator against
the counting table (`ops`), and runs that one graph (`graph`) to count, measure bits and
pruning (`profile`, `bits`) and predict the test images (`__main__`). The submission directory
is neither mounted nor importable here.
"""
