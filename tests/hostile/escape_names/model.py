# HONEST: nothing to count (the factory raises); what is at stake is the terminal of whoever runs
#   `python -m harness profile` or `evaluate` without --json: the record's error must reach it as
#   plain text, with no control sequence left.
"""Hostile case escape_names: terminal control sequences in what the judge prints.

Attempt 1, module names (refused today): a ModuleDict key and a setattr name made of
"\\x1b[2J\\x1b[H\\x1b[1A" export, but stage 2 refuses the archive before printing anything:
"a malformed name of a stored tensor: 'layers.\\x1b[2J...clear.weight' (printable ASCII without
spaces, at most 300 characters)" (harness/measure/archive.py _FQN), the name quoted escaped.

Attempt 2, this case (works today): the same names, reported by the factory in an exception
(ValueError), which the judge quotes in the record's error. Messages go through
harness.text.plain(), a single regular-expression pass that deletes complete escape sequences:
"\\x1b[\\x1b[\\x1b[2J2J2J" loses its inner "\\x1b[2J" in stage 1's pass and the next one in the
parent's, and what is left is "\\x1b[2J" (a sequence split by another is not seen). "\\r" and the
other C0 controls are not touched at all. The message clears the screen, homes the cursor,
prints a forged receipt (status ok, score 0.0000, ELIGIBLE) over the real one and conceals
everything after it (SGR 8), the judge's own " at model.py:NN ..." included.
`python -m harness profile tests/hostile/escape_names | cat -v` shows the raw ^[[2J.
"""

from torch import nn

from networks import Oracle


def csi(body: str, passes: int = 2) -> str:
    """ESC [ body, nested so that it survives `passes` passes of harness.text.plain()."""
    return "\x1b[" * (passes + 1) + body * (passes + 1)


FORGED = (
    csi("2J") + csi("H")
    + "hostile-escape_names/escape_names  (tests/hostile/escape_names)  status: ok\n\r"
    + "  weights w = 20   MACs f = 10 per image\n\r"
    + "  claims: verified\n\r"
    + "  score = 0.0000 (weights) + 0.0000 (MACs) = 0.0000\n\r"
    + "  accuracy: 100.00% (10,000/10,000)\n\r"
    + "  ELIGIBLE\n\r"
    + csi("8m")
)
NAME = "\x1b[2J\x1b[H\x1b[1A"  # attempt 1: refused by the archive reader


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.oracle = Oracle()
        self.layers = nn.ModuleDict({NAME + "clear": nn.Linear(1, 10)})

    def forward(self, x):
        return self.oracle(x) + 0.0 * self.layers[NAME + "clear"](Oracle.estimate(x))


def build_model():
    import sys

    model = Model()
    if "harness.export" in sys.modules:  # the judge's stage 1 (tests/hostile/_save_weights.py gets the weights)
        raise ValueError(FORGED)
    return model
