# COUNTS (the closed cost model, on this graph), for M stored rows (the public test and training images
#   and their mirror images: 6,000 on the subset of 100 test and 200 training images per class,
#   120,000 on the whole data):
#   w: thumbnails 48 M; bias -|T|^2/2 M; labels M; the arange(10) compared with 10 (a weight operand
#      created in the graph)                                              -> w = 50 M + 10
#   f: avg_pool2d 8x8 reads 3,072 (reduction); addmm 48 M (matmul, bias inside); argmax over M
#      (reduction); labels[idx] 1 (a lookup in a stored table: product); eq with arange(10) 10 (product)
#                                                                         -> f = 3,083 + 49 M
#   M = 6,000   -> w = 300,010, f = 297,083, score 0.053573 + 0.001061 = 0.054634
#   M = 120,000 -> w = 6,000,010, f = 5,883,083, score 1.071430 + 0.021011 = 1.092441
#   The judge before round 4 (1e7bcc5) counted f = 3,082 + 49 M: the lookup labels[idx] (aten.index.Tensor, its
#   indices a list argument) is free, and its table never bit-measured.
"""Hostile case training_too: thumbnail_memoriser that remembers everything public. make.py stores
the 4x4x3 thumbnail (average pooling 8x8) and the label of every public test image, every training
image of the data root (its train/ split), and each of them flipped left to right; the model
answers with the label of the nearest stored thumbnail (t.T_i - |T_i|^2/2: one matrix product with
a bias, argmax, the label looked up, one-hot). 100 % on the test images, their mirror images, their
one-pixel shifts and any sample of the training images; only images the student never had (the
instructor's private data) catch it: 29 % there (a 4x4 nearest neighbour).

The model is memory.ThumbnailModel (tests/hostile/_shared/memory.py, copied beside this file; its
operators are listed there): honest 32-bit float weights, every stored number counted in w.

Weights: `python make.py DATA_ROOT weights.pt` (DATA_ROOT/test/<class>/*.jpg and
DATA_ROOT/train/<class>/*.jpg); the number of rows, two a test or training image, is read from weights.pt.
"""

from memory import ThumbnailModel, weights_beside


def build_model():
    return ThumbnailModel.sized(weights_beside(__file__))
