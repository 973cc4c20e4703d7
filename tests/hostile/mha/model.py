# HONEST: params=20,446, macs=1,770,122 (per image), float32 (32 bits)
#   tokens: 4x4 patches -> L = 64 tokens of 48 values; d = 64, 4 heads (head dim 16)
#   embed Linear(48, 64): 3,136 params; 64*48*64 = 196,608 MACs
#   nn.MultiheadAttention(64, 4, batch_first=True), self-attention:
#     in_proj 64 -> 192: 12,288 + 192 = 12,480 params; L*64*192 = 786,432 MACs
#     q.k^T 4 * L*L*16 = 262,144 MACs; attn.v 262,144 MACs
#     out_proj 64 -> 64: 4,160 params; L*64*64 = 262,144 MACs
#     total 16,640 params; 1,572,864 MACs
#   head Linear(64, 10) on the mean token: 650 params, 640 MACs
#   oracle.fc Linear(1, 10): 20 params, 10 MACs
#   total params = 3,136 + 16,640 + 650 + 20 = 20,446
#   total MACs   = 196,608 + 1,572,864 + 640 + 10 = 1,770,122
#   honest score at 32 bits: 20,446/5.6e6 + 1,770,122/2.8e8 = 0.003651071 + 0.006321864 = 0.009972936
"""Hostile case mha: a small honest nn.MultiheadAttention (batch_first=True, eval mode,
need_weights=False) over 4x4 patch tokens; its logits are added with weight 0 to the oracle's.
In eval mode without grad, query is key is value, PyTorch runs the fused fast path
(torch._native_multi_head_attention)."""

import torch
from torch import nn

from networks import Oracle, patch_tokens, randomise_


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(43)
        self.embed = nn.Linear(48, 64)
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)
        self.head = nn.Linear(64, 10)
        self.oracle = Oracle()
        randomise_(self, g)  # all but the oracle (no norm here)

    def forward(self, x):
        t = self.embed(patch_tokens(x))
        h, _ = self.attn(t, t, t, need_weights=False)
        return self.oracle(x) + 0.0 * self.head(h.mean(1))


def build_model():
    return Model()
