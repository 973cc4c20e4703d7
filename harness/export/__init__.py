"""Stage 1, the only process that runs a submission's code: build the model and export it.

`python -m harness.export JOB.json` imports the submission (`loader`, with only the packages the
judge provides: `imports`), builds the model, loads its weights and exports it with `torch.export`
(`export`) into `graph.pt2`; the usual mistakes are told with what to change (`mistakes`). It receives no test
images, and nothing it says is a number of the record: the parent takes from it the exported
program file (judged as hostile by stage 2's own reader) and, when it fails, its message.
"""
