# HONEST: nothing to count; the graph must be refused before it runs. On the probe batch (n = 16) it
#   reduces n * n^10 = 2^44 = 17,592,186,044,416 elements (an expanded view: no memory, all time);
#   at n = 4 (the export's example batch) 4^11 = 4,194,304 elements, so it exports in seconds.
#   f today would be the reduction's input, 2^40 per image (if it ever finished)
"""Hostile case budget_bomb: a graph whose work explodes with the batch size. The image's first
pixel, [n, 1, 1], is expanded (a stride-0 view: no memory) to [n, n^5, n^5], sizes made from the
symbolic batch size by a chain of products (_operator.mul on aten.sym_size.int: n*n, squared,
times n), then summed (aten.sum.dim_IntList). At the export's example batch of 4 that is 4^11 =
4 M additions; on the judge's probe batch of 16 it is 2^44 = 1.8e13 additions, hours of CPU,
in a process that holds a few MB. Today's judge has no budget: it reads the graph, starts
counting on the probe batch and runs until the stage's time limit (30 min by default; the suite's
60 s), where it could refuse in seconds by evaluating the sizes first. The logits are the
oracle's plus 0 times that sum.
Operators: sym_size.int, _operator.mul, view, expand, sum.dim_IntList.
"""

from torch import nn

from networks import Oracle


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.oracle = Oracle()

    def forward(self, x):
        n = x.shape[0]
        sq = n * n
        big = sq * sq * n  # n^5: 1,048,576 at n = 16
        pixel = x[:, 0, :1, :1]  # [n, 1, 1]
        bomb = pixel.expand(n, big, big).sum(dim=(1, 2))  # n^10 additions per image
        return self.oracle(x) + 0.0 * bomb.unsqueeze(1)


def build_model():
    return Model()
