"""The 5-bit example's own training step (submissions/quant-w5a5-pruned/train.py): `split`
maps the baseline's float weights into the example's layout (each 3x3 convolution as its
centre taps + the rest) and keeps the function."""

from __future__ import annotations

import pytest

from .conftest import REPO, load_scripts

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

EXAMPLE = REPO / "submissions" / "quant-w5a5-pruned"


@pytest.fixture
def parts(monkeypatch):
    """(the baseline's model.py, this example's model.py, its train.py), as modules."""
    return load_scripts(monkeypatch, REPO / "submissions" / "baseline-cnn" / "model.py", EXAMPLE / "model.py",
                        EXAMPLE / "train.py")


def test_split_computes_the_baseline_in_float(parts):
    from brevitas.graph.calibrate import quantization_status_manager

    float_model, quant_model, recipe = parts
    torch.manual_seed(0)
    base = float_model.build_model()
    for m in base.modules():  # trained-looking batch-norm statistics and identity taps
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3):
            n = min(m.weight.shape[:2])
            m.weight.data[torch.arange(n), torch.arange(n), 1, 1] += 0.9
    base.eval()
    net = quant_model.build_model()
    net.load_state_dict(recipe.split(base.state_dict()), strict=False)  # quantiser state is new
    net.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(), quantization_status_manager(net, disable_act_quant=True, disable_weight_quant=True,
                                                       disable_bias_quant=True, is_training=False):
        got = net(x)
    assert net.group2.conv1.skip.weight.shape == (64, 1, 1, 1)  # min(c_in, c_out) taps
    assert float(net.group2.conv1.conv.weight.detach()[3, 3, 1, 1]) == 0.0
    assert float(net.group2.conv1.skip.weight.detach()[3, 0, 0, 0]) == pytest.approx(
        float(base.group2.conv1.weight.detach()[3, 3, 1, 1]))
    torch.testing.assert_close(got, base(x), rtol=1e-4, atol=1e-4)

