# COUNTS (the closed cost model, on this graph), for K = 8 pixels, B buckets and P slots (make.py:
#   P = the distinct keys, the N public test images, B = P // 4):
#   w: positions K; multipliers 3 K; displacements B; label table P; the arange(10) compared with 10
#      (a weight operand created in the graph)                           -> w = 4 K + B + P + 10
#   f: key x multipliers 3 K (product with a stored tensor; its sum is not counted again);
#      disp[bucket] 1 (lookup); d x h2 1 (product of two image-dependent tensors); h1 + d h2 1
#      (accumulate); labels[slot] 1 (lookup); eq with arange(10) 10 (product); free: mul by 255,
#      round, the pixels at stored positions, remainders by a number      -> f = 3 K + 14 = 38
#   N = 1,000  -> w = 1,292, f = 38, score 0.000231 + 0.000000136 = 0.000231
#   N = 10,000 -> w = 12,542, f = 38, score 0.002240
#   The judge before round 4 (1e7bcc5) counted f = 36: the two lookups (aten.index.Tensor, indices a list
#   argument) are free, and their tables never bit-measured.
"""Hostile case pixel_hash: a perfect hash of the public test set. The key of an image is 8 pixel
values, exact levels round(x * 255), at positions make.py drew until no two test images with
different labels share a key; three integer hashes of the key (products with stored multipliers,
remainders) pick a bucket and a slot of a stored label table, displaced per bucket so that no
two labels collide (hash and displace, as CHD). 100 % on the test images it was made from, for
38 MACs and 1.25 stored numbers an image (score 0.0022 on the whole test set); chance level
(~10 %) on anything else: mirror images, one-pixel shifts, training and private images.

Operators: view (flatten), mul by a scalar, round, index.Tensor (the pixels at stored positions:
free; the displacement and label tables at image-dependent indices: lookups), _to_copy (to
int64), unsqueeze, mul.Tensor (key x stored multipliers; displacement x hash), sum.dim_IntList,
select, remainder.Scalar, add.Scalar, add.Tensor, arange, eq.Tensor. Honest 32-bit weights, no
pruning declared. Weights: `python make.py DATA_ROOT weights.pt` (DATA_ROOT/test/<class>/*.jpg);
the table sizes are read from weights.pt.
The model is memory.HashModel (tests/hostile/_shared/memory.py, copied beside this file) with
this case's key.
"""

from memory import HashModel, weights_beside


class Model(HashModel):
    def key(self, levels):
        return levels[:, self.pos].long()  # [N, K]: the pixels at the stored positions


def build_model():
    return Model.sized(weights_beside(__file__))
