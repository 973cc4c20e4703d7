# COUNTS (the closed cost model, on this graph), for M stored rows (the public test
#   images: 1,000 on the 100-per-class subset, 10,000 on the whole test set):
#   w: thumbnails 48 M; bias -|T|^2/2 M; labels M; the arange(10) compared with 10 (a weight operand
#      created in the graph)                                              -> w = 50 M + 10
#   f: avg_pool2d 8x8 reads 3,072 (reduction); addmm 48 M (matmul, bias inside); argmax over M
#      (reduction); labels[idx] 1 (a lookup in a stored table: product); eq with arange(10) 10 (product)
#                                                                         -> f = 3,083 + 49 M
#   M = 1,000  -> w = 50,010, f = 52,083, score 0.008930 + 0.000186 = 0.009116
#   M = 10,000 -> w = 500,010, f = 493,083, score 0.089288 + 0.001761 = 0.091049
#   The judge before round 4 (1e7bcc5) counted f = 3,082 + 49 M: the lookup labels[idx] (aten.index.Tensor, its
#   indices a list argument) is free, and its table never bit-measured.
"""Hostile case thumbnail_memoriser: remembers the public test set. make.py stores the 4x4x3
thumbnail (average pooling 8x8) of every public test image and its label; the model answers with
the label of the nearest stored thumbnail: squared distance |t - T_i|^2 ranked as t.T_i - |T_i|^2/2
(one matrix product with a bias), argmax, then the label looked up and turned into a one-hot row.
100 % on the test images it was made from, for a score of 0.091 on the whole test set (50 numbers
an image); one-pixel shifts of them still find their own thumbnail (100 %), but mirror images do
not (44-48 %), nor do images it never saw: training or private images, 23-29 % (a 4x4 nearest
neighbour).

The model is memory.ThumbnailModel (tests/hostile/_shared/memory.py, copied beside this file; its
operators are listed there): honest 32-bit float weights, every stored number counted in w.

Weights: `python make.py DATA_ROOT weights.pt` (DATA_ROOT/test/<class>/*.jpg); the number of rows, one
a test image, is read from weights.pt.
"""

from memory import ThumbnailModel, weights_beside


def build_model():
    return ThumbnailModel.sized(weights_beside(__file__))
