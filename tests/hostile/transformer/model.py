# HONEST: params=70,750, macs=5,440,138 (per image), float32 (32 bits)
#   tokens: 4x4 patches of the 3x32x32 image -> L = 64 tokens of 48 values; d = 64, 4 heads, ff = 128
#   embed Linear(48, 64): 48*64 + 64 = 3,136 params; 64 tokens * 48 * 64 = 196,608 MACs
#   each of 2 TransformerEncoderLayer (post-norm, ReLU):
#     in_proj  (q, k, v) 64 -> 192: 12,288 + 192 = 12,480 params; L*64*192 = 786,432 MACs
#     q.k^T  4 heads * L*L*16 = L*L*64 = 262,144 MACs;  attn.v  L*L*64 = 262,144 MACs
#     out_proj 64 -> 64: 4,096 + 64 = 4,160 params; L*64*64 = 262,144 MACs
#     linear1 64 -> 128: 8,192 + 128 = 8,320 params; L*64*128 = 524,288 MACs
#     linear2 128 -> 64: 8,192 + 64 = 8,256 params; L*128*64 = 524,288 MACs
#     norm1, norm2: 2 * (64 + 64) = 256 params, 0 MACs
#     per layer: 33,472 params; 786,432 + 2*262,144 + 262,144 + 2*524,288 = 2,621,440 MACs
#   head Linear(64, 10) on the mean token: 650 params, 640 MACs
#   oracle.fc Linear(1, 10): 20 params, 10 MACs
#   total params = 3,136 + 2*33,472 + 650 + 20 = 70,750
#   total MACs   = 196,608 + 2*2,621,440 + 640 + 10 = 5,440,138
#   honest score at 32 bits: 70,750/5.6e6 + 5,440,138/2.8e8 = 0.012633929 + 0.019429064 = 0.032062993
"""Hostile case transformer: a small honest nn.TransformerEncoder (batch_first=True, eval mode)
over 4x4 patch tokens; its logits are added with weight 0 to the oracle's. In eval mode without
grad, PyTorch runs the encoder layers through its fused fast path
(torch._transformer_encoder_layer_fwd), one operator for the whole layer."""

import torch
from torch import nn

from networks import Oracle, patch_tokens, randomise_


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(41)
        self.embed = nn.Linear(48, 64)
        layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)
        self.oracle = Oracle()
        randomise_(self, g)  # all but the oracle; norms weight 1, bias 0

    def forward(self, x):
        h = self.encoder(self.embed(patch_tokens(x)))
        return self.oracle(x) + 0.0 * self.head(h.mean(1))


def build_model():
    return Model()
