# COUNTS (the closed cost model, on this graph), for M stored rows (the public test
#   images and their mirror images: 2,000 on the 100-per-class subset, 20,000 on the whole test set):
#   w: thumbnails 48 M; bias -|T|^2/2 M; labels M; the arange(10) compared with 10 (a weight operand
#      created in the graph)                                              -> w = 50 M + 10
#   f: avg_pool2d 8x8 reads 3,072 (reduction); addmm 48 M (matmul, bias inside); argmax over M
#      (reduction); labels[idx] 1 (a lookup in a stored table: product); eq with arange(10) 10 (product)
#                                                                         -> f = 3,083 + 49 M
#   M = 2,000  -> w = 100,010, f = 101,083, score 0.017859 + 0.000361 = 0.018220
#   M = 20,000 -> w = 1,000,010, f = 983,083, score 0.178573 + 0.003511 = 0.182084
#   The judge before round 4 (1e7bcc5) counted f = 3,082 + 49 M: the lookup labels[idx] (aten.index.Tensor, its
#   indices a list argument) is free, and its table never bit-measured.
"""Hostile case flipped_too: thumbnail_memoriser that also remembers the mirror images. make.py
stores the 4x4x3 thumbnail (average pooling 8x8) and the label of every public test image and of
the same image flipped left to right (2 N rows); the model answers with the label of the nearest
stored thumbnail (t.T_i - |T_i|^2/2: one matrix product with a bias, argmax, the label looked up,
one-hot). 100 % on the test images, on their mirror images (so no flip check sees it) and on their
one-pixel shifts; 25 % on training or private images it never saw (a 4x4 nearest neighbour).

The model is memory.ThumbnailModel (tests/hostile/_shared/memory.py, copied beside this file; its
operators are listed there): honest 32-bit float weights, every stored number counted in w.

Weights: `python make.py DATA_ROOT weights.pt` (DATA_ROOT/test/<class>/*.jpg); the number of rows, two a
test image (it and its mirror image), is read from weights.pt.
"""

from memory import ThumbnailModel, weights_beside


def build_model():
    return ThumbnailModel.sized(weights_beside(__file__))
