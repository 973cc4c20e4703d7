"""Weights and MACs of tiny networks, exported and counted as the judge does, against counts
worked out by hand (conventions: harness/ops.py and harness/measure/profile.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import SubmissionError
from harness.measure import archive
from harness.score import RESNET18_MACS, RESNET18_PARAMS

from .conftest import exported, measured

HW = 32 * 32  # output positions of a 'same' convolution on a CIFAR image


class Head(nn.Module):
    """`body` on the image, then flatten and a linear layer to 10 classes (no bias)."""

    def __init__(self, body: nn.Module, features: int):
        super().__init__()
        self.body, self.fc = body, nn.Linear(features, 10, bias=False)

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


def test_conv_with_bias(tmp_path):
    p = measured(Head(nn.Conv2d(3, 8, 3, padding=1), 8 * HW), tmp_path)
    assert p["params"] == 3 * 8 * 9 + 8 + 8 * HW * 10
    assert p["macs"] == 8 * 3 * 9 * HW + 8 * HW * 10  # bias additions are not MACs
    assert [r["op"] for r in p["layers"]] == ["conv", "matmul"]


def test_strided_grouped_and_depthwise_conv(tmp_path):
    body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),  # 16 x 16 out
                         nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False),  # weight [16, 2, 3, 3]
                         nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False))  # weight [16, 1, 3, 3]
    p = measured(Head(body, 16 * 256), tmp_path)
    assert p["macs"] == (8 * 27 + 16 * 18 + 16 * 9) * 256 + 16 * 256 * 10
    assert p["params"] == 8 * 27 + 16 * 18 + 16 * 9 + 16 * 256 * 10


def test_shared_weights_count_once_and_run_twice(tmp_path):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 10, bias=False)
            self.fc.weight.requires_grad = False  # frozen still counts

        def forward(self, x):
            return self.fc(self.fc(x[:, 0, 0, :10]))

    p = measured(Twice(), tmp_path)
    assert p["params"] == 100 and p["macs"] == 200


def test_buffers_and_constants_are_weights(tmp_path):
    """Weights hidden as buffers or created in forward count like parameters."""
    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.randn(10, 3072))

        def forward(self, x):
            return F.linear(x.flatten(1), self.w) + torch.tensor([float(i) for i in range(10)])  # a constant

    p = measured(Hidden(), tmp_path)
    # the constant added to the image-dependent logits is a product with a stored tensor: 10 per image
    assert p["params"] == 30_720 + 10 and p["macs"] == 30_720 + 10


def test_a_norm_after_a_convolution_folds_into_it_as_a_bias(tmp_path):
    body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    p = measured(Head(body, 8), tmp_path)
    assert p["params"] == 224 + 8 + 80  # conv, the folded BN (one number per channel), fc
    assert sum(r["params"] for r in p["layers"]) == p["params"]
    assert {"layer": "body.1", "op": "params", "params": 8, "macs": 0} in p["layers"]
    # the global average pool sums 8 x 32 x 32 values: accumulates
    assert p["macs"] == 8 * 27 * HW + 8 * HW + 80


def test_prune_mask_is_not_a_weight_its_zeros_are_pruning(tmp_path):
    import torch.nn.utils.prune as prune

    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    prune.l1_unstructured(conv, "weight", amount=0.5)
    p = measured(Head(conv, 8 * HW), tmp_path)
    assert p["params"] == 216 + 8 * HW * 10  # weight_orig counted, weight_mask not
    assert p["layers"][0]["zeros"] == 108
    assert p["measured"]["unstructured_pruning"] == pytest.approx(108 / p["params"])


def test_physically_channel_pruned_model_counts_real_shapes(tmp_path):
    pruned = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(5, 8, 3, padding=1))
    p = measured(Head(pruned, 8 * HW), tmp_path)
    assert p["macs"] == (5 * 27 + 8 * 45) * HW + 8 * HW * 10


def test_multihead_attention_in_eval_mode(tmp_path):
    """Export takes no fused fast path: every projection and both attention products count."""
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 32, 4, 4)  # 64 tokens of 32
            self.att = nn.MultiheadAttention(32, 4, batch_first=True)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            t = self.proj(x).flatten(2).transpose(1, 2)
            y, _ = self.att(t, t, t, need_weights=False)
            return self.fc(y.mean(1))

    L, E, H = 64, 32, 4
    attention = L * E * 3 * E + 2 * H * L * L * (E // H) + L * E * E  # in-projection, q.k and a.v, out-projection
    attention += L * 3 * E + 2 * H * L * L  # the in-projection's bias added to image data (a product); the
    # softmax's reduction and the any() of export's masked softmax (each over H x L x L; its where is free)
    p = measured(Attn(), tmp_path)
    assert p["macs"] == 32 * 48 * L + attention + L * E + E * 10  # + the mean's accumulates, fc


def test_transformer_encoder_in_eval_mode(tmp_path):
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 32, 4, 4)
            layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(self.enc(self.proj(x).flatten(2).transpose(1, 2)).mean(1))

    L, E, H, FF = 64, 32, 4, 64
    attention = L * E * 3 * E + 2 * H * L * L * (E // H) + L * E * E
    attention += L * 3 * E + 2 * H * L * L  # as in the test above: bias, softmax, masked softmax
    norms = 2 * (2 * L * E)  # two layer norms: statistics over every input element, one scale per element
    layer = attention + 2 * L * E * FF + 2 * L * E + norms  # feed-forward, two residual additions
    p = measured(Encoder(), tmp_path)
    assert p["macs"] == 32 * 48 * L + 2 * layer + L * E + E * 10


def test_unfold_convolution_counts_as_the_convolution(tmp_path):
    class Unfolded(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 27))

        def forward(self, x):
            u = F.unfold(x, 3, padding=1)  # [N, 27, 1024]
            return (self.w[None, :, :, None] * u[:, None]).sum(2)  # [N, 8, 1024]

    p = measured(Head(Unfolded(), 8 * HW), tmp_path)
    assert p["macs"] == 8 * 27 * HW + 8 * HW * 10  # the product counts; the sum it feeds does not again


def test_einsum_is_a_matrix_product_with_measured_operands(tmp_path):
    class Ein(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(10, 3072))

        def forward(self, x):
            return torch.einsum("nk,ok->no", x.flatten(1), self.w)

    p = measured(Ein(), tmp_path)
    assert p["macs"] == 30_720 and p["params"] == 30_720
    assert p["measured"]["weight_bits"] == 32  # float32 weights, measured through the einsum


def test_depthwise_product_and_residual_are_counted(tmp_path):
    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.randn(1, 3, 32, 32))

        def forward(self, x):
            return x * self.scale + x.relu()  # a product by a tensor, an addition of two activations

    p = measured(Head(Body(), 3 * HW), tmp_path)
    assert p["macs"] == 3 * HW + 3 * HW + 3 * HW * 10


def test_fft_is_refused_by_name(tmp_path):
    class Spectral(nn.Module):
        def forward(self, x):
            return torch.fft.rfft2(x).abs().flatten(1)[:, :10]

    with pytest.raises(archive.ArchiveError, match="fft.*FFT has no multiply-accumulate rule"):
        archive.read(exported(Spectral(), tmp_path))


def test_torch_ao_quantized_models_are_refused_with_the_way_out(tmp_path):
    from torch.ao.quantization import DeQuantStub, QuantStub, convert, get_default_qconfig, prepare

    model = nn.Sequential(QuantStub(), nn.Conv2d(3, 4, 3), DeQuantStub()).eval()
    model.qconfig = get_default_qconfig("x86")
    model = prepare(model)
    model(torch.rand(2, 3, 32, 32))
    model = convert(model)
    with pytest.raises(SubmissionError, match="torch.ao quantized modules.*brevitas"):
        exported(model, tmp_path)


def test_zero_channels_on_a_tiny_input_carry_no_macs(tmp_path):
    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3072, 10, bias=False)
            self.pad = nn.Linear(1, 4096, bias=False)
            nn.init.zeros_(self.pad.weight)

        def forward(self, x):
            return self.fc(x.flatten(1)) + self.pad(x[:, :1, 0, 0])[:, :10]

    p = measured(Padded(), tmp_path)
    assert p["measured"]["structured_pruning"] == pytest.approx(4096 / (30_720 + 4096))
    assert p["structured_mac_share"] == pytest.approx(4096 / p["macs"])  # ~12 % of the weights, 11 % of f


def test_brevitas_quant_layers(tmp_path):
    qnn = pytest.importorskip("brevitas.nn")
    model = nn.Sequential(
        qnn.QuantIdentity(bit_width=4),
        qnn.QuantConv2d(3, 8, 3, padding=1, weight_bit_width=4, bias=False),
        qnn.QuantReLU(bit_width=4),
        nn.Flatten(),
        qnn.QuantLinear(8 * HW, 10, bias=True, weight_bit_width=4),
    )
    p = measured(model, tmp_path)
    assert p["macs"] == 8 * 27 * HW + 8 * HW * 10
    assert p["measured"]["weight_bits"] == 4 and p["measured"]["activation_bits"] == 4
    assert sum(r["params"] for r in p["layers"]) == p["params"]


class _TwoViews(nn.Module):
    """Runs its 4-bit network on the image and on a second view of it, averaging the logits."""

    def __init__(self, view):
        super().__init__()
        qnn = pytest.importorskip("brevitas.nn")
        self.view = view
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.quant = qnn.QuantIdentity(bit_width=4)
        self.head = nn.Linear(8 * HW, 10, bias=False)

    def forward(self, x):
        return sum(self.head(self.quant(self.conv(v)).flatten(1)) for v in (x, self.view(x))) / 2


def test_a_flipped_view_of_the_image_is_the_image(tmp_path):
    p = measured(_TwoViews(lambda x: x.flip(3)), tmp_path)
    assert p["macs"] == 2 * (8 * 27 * HW + 8 * HW * 10) + 10  # both passes (+ the 10 additions of the average)
    assert p["measured"]["activation_bits"] == 4


def test_a_changed_image_is_an_activation(tmp_path):
    p = measured(_TwoViews(lambda x: x.flip(3).exp()), tmp_path)
    assert p["measured"]["activation_bits"] == 32


def test_agrees_with_ptflops_aten_backend_on_convolutions_and_linears(tmp_path):
    from ptflops import get_model_complexity_info

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, groups=4, bias=False), nn.MaxPool2d(15), nn.Flatten(),
                          nn.Linear(64, 10, bias=False)).eval()
    ref, _ = get_model_complexity_info(model, (3, 32, 32), backend="aten", as_strings=False,
                                       print_per_layer_stat=False)
    p = measured(model, tmp_path)
    assert sum(r["macs"] for r in p["layers"] if r["op"] in ("conv", "matmul")) == ref  # ptflops counts no pools
    assert p["macs"] == ref + 16 * 30 * 30  # the max pool: one per input element


@pytest.mark.release
def test_cifar_resnet18(tmp_path):
    """The reference network of the score, counted by hand: convolutions and fc 555,422,720, the
    residual additions 2 x (64x32x32 + 128x16x16 + 256x8x8 + 512x4x4) = 245,760, the average pool
    512 x 4 x 4 = 8,192."""
    import sys

    from .conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from models import resnet18
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    p = measured(resnet18(), tmp_path)
    assert p["params"] == 11_173_962 - 4_800 == RESNET18_PARAMS  # each of its norms folds: one number per channel
    assert p["macs"] == 555_422_720 + 245_760 + 8_192 == RESNET18_MACS  # the score's reference constants
