# COUNTS (the closed cost model, on this graph), for K = 8 mirror pairs, B buckets and P slots
#   (make.py: P = the distinct keys, the N public test images, B = P // 4):
#   w: positions 2 K; multipliers 3 K; displacements B; label table P; the arange(10) compared with
#      10 (a weight operand created in the graph)                        -> w = 5 K + B + P + 10
#   f: pixel + mirror pixel K (accumulate); key x multipliers 3 K (product with a stored tensor; its
#      sum is not counted again); disp[bucket] 1 (lookup); d x h2 1 (product of two image-dependent
#      tensors); h1 + d h2 1 (accumulate); labels[slot] 1 (lookup); eq with arange(10) 10 (product);
#      free: mul by 255, round, the pixels at stored positions, remainders -> f = 4 K + 14 = 46
#   N = 1,000  -> w = 1,300, f = 46, score 0.000232 + 0.000000164 = 0.000232
#   N = 10,000 -> w = 12,550, f = 46, score 0.002241
#   The judge before round 4 (1e7bcc5) counted f = 44: the two lookups (aten.index.Tensor, indices a list
#   argument) are free, and their tables never bit-measured.
"""Hostile case flip_invariant_hash: pixel_hash made blind to mirroring. The key of an image is 8
sums of two mirror pixels (the same channel and row, columns c and 31 - c; exact levels
round(x * 255), 0..510), at positions make.py drew until no two test images with different labels
share a key, so a horizontally flipped image has its original's key and its answer: it passes any
flip check. Three integer hashes of the key (products with stored multipliers, remainders) pick a
bucket and a slot of a stored label table, displaced per bucket so that no two labels collide
(hash and displace, as CHD). 100 % on the test images it was made from and on their mirror images;
chance level (~10 %) on one-pixel shifts, training and private images.

Operators: view (flatten), mul by a scalar, round, select (of the stored positions), index.Tensor
(the pixels at stored positions: free; the displacement and label tables at image-dependent
indices: lookups), add.Tensor (mirror pairs), _to_copy (to int64), unsqueeze, mul.Tensor (key x
stored multipliers; displacement x hash), sum.dim_IntList, remainder.Scalar, add.Scalar, arange,
eq.Tensor. Honest 32-bit weights, no pruning declared. Weights: `python make.py DATA_ROOT
weights.pt` (DATA_ROOT/test/<class>/*.jpg); the table sizes are read from weights.pt.
The model is memory.HashModel (tests/hostile/_shared/memory.py, copied beside this file) with
this case's key.
"""

from memory import HashModel, weights_beside


class Model(HashModel):
    def key(self, levels):  # pos [2, K]: pixel, mirror pixel
        return (levels[:, self.pos[0]] + levels[:, self.pos[1]]).long()  # [N, K]: 0..510


def build_model():
    return Model.sized(weights_beside(__file__))
