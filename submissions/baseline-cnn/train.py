"""Train the baseline CNN on the CIFAR-10 training images (airbench94's recipe, on any device).

    python submissions/baseline-cnn/train.py --data ../shared/data/cifar10-jpg [--epochs 10]

Reads the train split in either layout (torchvision's cifar-10-batches-py or an ImageFolder
tree) through the harness's loader, never the test split, and writes weights.pt beside this file.
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import build_model  # noqa: E402

from harness.data import load_split  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
EPOCHS = 24.0
DISTILL = 0.5  # share of the baseline's predictions in the compressed examples' fine-tuning loss
HYP = dict(batch=1024, lr=11.5, momentum=0.85, wd=0.0153, bias_scaler=64.0, smoothing=0.2, whiten_bias_epochs=3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=float, default=EPOCHS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "weights.pt"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, labels = load_train(args.data, device)
    model = build_model().to(device).to(memory_format=torch.channels_last)
    train(model, x, labels, args.epochs, device)
    torch.save(model.state_dict(), args.out)
    print(f"saved {args.out}")


def compress_main(here: Path, doc: str, prune_amount: float, epochs: float, lr_scale: float = 0.2,
                  convert: Callable[[dict], dict] | None = None) -> None:
    """Command line of the compressed examples: baseline weights -> prune -> fine-tune -> weights.pt.
    `convert` maps the baseline's float weights into the example's layout, when it differs."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--init", help="trained weights to start from, the baseline's or a pruned model's "
                    "(default: train the baseline first)")
    ap.add_argument("--epochs", type=float, default=epochs, help="fine-tuning epochs")
    ap.add_argument("--prune", type=float, default=prune_amount,
                    help="fraction of the group convolutions' weights to prune (global, by magnitude)")
    ap.add_argument("--teacher", nargs="+", metavar="WEIGHTS",
                    help="baseline weights whose predictions are distilled, averaged when several (default: --init's)")
    ap.add_argument("--distill", type=float, default=DISTILL,
                    help="weight of the baseline's predictions in the fine-tuning loss (0: labels only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(here / "weights.pt"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, y = load_train(args.data, device)
    if args.init:
        state = torch.load(args.init, map_location=device, weights_only=True)
    else:
        base = build_model().to(device).to(memory_format=torch.channels_last)
        train(base, x, y, EPOCHS, device)
        state = base.state_dict()
    spec = importlib.util.spec_from_file_location(f"example_{here.name.replace('-', '_')}", here / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model().to(device)
    # quantiser scales are new; they calibrate on the first steps
    model.load_state_dict(convert(state) if convert else state, strict=False)
    teacher = None
    if args.distill > 0:
        states = [torch.load(p, map_location=device, weights_only=True) for p in args.teacher or []] or [state]
        teacher = _ensemble(states, device)
    finetune(model, x, y, args.epochs, lr_scale, args.prune, device, teacher, args.distill)
    torch.save(model.state_dict(), args.out)
    print(f"saved {args.out}")


def _ensemble(states: list[dict], device: str) -> nn.Module:
    """The baselines with these weights, in eval mode, as one module that averages their logits."""
    nets = nn.ModuleList()
    for state in states:
        net = build_model().to(device).to(memory_format=torch.channels_last)
        net.load_state_dict(state)
        nets.append(net.eval())
    return nets[0] if len(nets) == 1 else _Mean(nets).eval()


class _Mean(nn.Module):
    def __init__(self, nets: nn.ModuleList):
        super().__init__()
        self.nets = nets

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in self.nets]).mean(0)


def load_train(data: str, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised training images [N, 3, 32, 32] and labels, from either layout."""
    split = load_split(data, "train")
    images = torch.from_numpy(split.images().copy()).permute(0, 3, 1, 2)
    return normalise(images).to(device), torch.from_numpy(split.labels).to(device)


def finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: float, lr_scale: float = 0.2,
             prune_amount: float = 0.0, device: str = "cpu", teacher: nn.Module | None = None,
             distill: float = 0.0) -> None:
    """Fine-tune a trained model (optionally quantised), magnitude-pruning `prune_amount` of the
    convolution weights of the three groups first (global, unstructured) and keeping them at zero.
    With a `teacher`, the loss mixes the labels (1 - `distill`) with the teacher's predicted
    probabilities (`distill`): knowledge distillation from the float baseline."""
    import torch.nn.utils.prune as prune

    targets = [(m, "weight") for name, m in model.named_modules() if name.startswith("group") and hasattr(m, "weight")
               and isinstance(getattr(m, "weight", None), torch.nn.Parameter) and m.weight.dim() == 4]
    if prune_amount > 0:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=prune_amount)
    n, batch = len(x), HYP["batch"]
    steps = int(epochs * n / batch)
    kilostep = 1024 * (1 + 1 / (1 - HYP["momentum"]))
    lr, wd = lr_scale * HYP["lr"] / kilostep, HYP["wd"] * batch / kilostep
    model.whiten.weight.requires_grad = True
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    groups = [
        dict(params=[p for name, p in params if "norm" in name], lr=lr * HYP["bias_scaler"],
             weight_decay=wd / HYP["bias_scaler"]),
        dict(params=[p for name, p in params if "norm" not in name], lr=lr, weight_decay=wd),
    ]
    opt = torch.optim.SGD(groups, momentum=HYP["momentum"], nesterov=True)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    step, start = 0, time.time()
    model.train()
    while step < steps:
        order = torch.randperm(n, device=device)
        xb_all = augment(x, device)
        for i in range(0, n - batch + 1, batch):
            if step >= steps:
                break
            idx = order[i : i + batch]
            with autocast(device):
                out = model(xb_all[idx])
            loss = F.cross_entropy(out.float(), y[idx], label_smoothing=HYP["smoothing"], reduction="sum")
            if teacher is not None:
                with torch.no_grad(), autocast(device):
                    target = teacher(xb_all[idx]).float().softmax(1)
                loss = (1 - distill) * loss + distill * F.cross_entropy(out.float(), target, reduction="sum")
            frac = step / steps
            for g in opt.param_groups:  # short warm-up, then linear decay to zero
                g["lr"] = g["initial_lr"] * min(1.0, 10 * frac + 0.1) * (1 - frac)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 10 == 0:
                acc = (out.argmax(1) == y[idx]).float().mean().item()
                print(f"step {step}/{steps} loss {loss.item() / batch:.3f} batch-acc {acc:.3f} "
                      f"{time.time() - start:.0f}s", flush=True)
    for module, name in targets if prune_amount > 0 else []:
        quant = getattr(module, "weight_quant", None)
        learned = quant.state_dict() if quant is not None else {}  # brevitas resets learned scales on remove
        prune.remove(module, name)  # the zeros stay in the saved weights
        if learned:
            quant.load_state_dict(learned)
    model.eval()
    print(f"fine-tuned {steps} steps in {time.time() - start:.0f}s", flush=True)


def normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: float, device: str, augmenter=None,
          teacher: nn.Module | None = None, distill: float = 0.0) -> None:
    """airbench's recipe on (x, y); `augmenter(x, device, flip)` replaces `augment`, and a `teacher`'s
    probabilities (one view: the batch is flipped at random already) weigh `distill` in the loss
    (benchmarks/calibrate.py trains its honest variants so)."""
    augmenter = augmenter or augment
    n, batch = len(x), HYP["batch"]
    steps = int(epochs * n / batch)
    kilostep = 1024 * (1 + 1 / (1 - HYP["momentum"]))
    lr, wd = HYP["lr"] / kilostep, HYP["wd"] * batch / kilostep
    init_whitening(model.whiten, x[:5000])
    init_identity(model)
    model.whiten.weight.requires_grad = False
    biases = [p for name, p in model.named_parameters() if "norm" in name and p.requires_grad]
    others = [p for name, p in model.named_parameters() if "norm" not in name and p.requires_grad]
    groups = [
        dict(params=biases, lr=lr * HYP["bias_scaler"], weight_decay=wd / HYP["bias_scaler"]),
        dict(params=others, lr=lr, weight_decay=wd),
    ]
    opt = torch.optim.SGD(groups, momentum=HYP["momentum"], nesterov=True)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    ema = {k: v.clone() for k, v in model.state_dict().items()}
    alpha = 0.95**5 * (torch.arange(steps + 1) / steps) ** 3
    flips = torch.rand(n, device=device) < 0.5  # alternating flips: each image flipped every other epoch
    step, epoch, start = 0, 0, time.time()
    while step < steps:
        model.train()
        model.whiten.bias.requires_grad = epoch < HYP["whiten_bias_epochs"]
        order = torch.randperm(n, device=device)
        xb_all = augmenter(x, device, flips ^ bool(epoch % 2))
        for i in range(0, n - batch + 1, batch):
            if step >= steps:
                break
            idx = order[i : i + batch]
            xb = xb_all[idx].contiguous(memory_format=torch.channels_last)
            with autocast(device):
                out = model(xb)
            loss = F.cross_entropy(out.float(), y[idx], label_smoothing=HYP["smoothing"], reduction="sum")
            if teacher is not None:
                with torch.no_grad(), autocast(device):
                    target = teacher.logits(xb).float().softmax(1)
                loss = (1 - distill) * loss + distill * F.cross_entropy(out.float(), target, reduction="sum")
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * schedule(step, steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 5 == 0:
                lookahead(model, ema, alpha[step].item())
            if step % 10 == 0:
                acc = (out.argmax(1) == y[idx]).float().mean().item()
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item() / batch:.3f} "
                      f"batch-acc {acc:.3f} {time.time() - start:.0f}s", flush=True)
        epoch += 1
    lookahead(model, ema, 1.0)
    print(f"trained {steps} steps in {time.time() - start:.0f}s", flush=True)


def schedule(step: int, steps: int) -> float:
    warm = int(steps * 0.23)
    if step < warm:
        return 0.2 + 0.8 * step / warm
    return 1.0 - 0.93 * (step - warm) / (steps - warm)


@torch.no_grad()
def lookahead(model: nn.Module, ema: dict, decay: float) -> None:
    for e, p in zip(ema.values(), model.state_dict().values(), strict=True):
        if p.dtype.is_floating_point:
            e.lerp_(p, 1 - decay)
            p.copy_(e)


def autocast(device: str) -> torch.autocast:
    """bfloat16 arithmetic for the forward pass (twice as fast on CPUs with AVX512-BF16; the
    harness evaluates at the declared bits, 16 for the baseline, so nothing is lost)."""
    return torch.autocast(device, dtype=torch.bfloat16)


@torch.no_grad()
def augment(x: torch.Tensor, device: str, flip: torch.Tensor | None = None, pad: int = 2) -> torch.Tensor:
    """Flips (random per image unless `flip` says which) and random translations of up to `pad` pixels."""
    n = len(x)
    flip = torch.rand(n, device=device) < 0.5 if flip is None else flip
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    out = torch.empty_like(x)
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), device=device)
    for dx in range(2 * pad + 1):
        for dy in range(2 * pad + 1):
            sel = (shifts[:, 0] == dx) & (shifts[:, 1] == dy)
            out[sel] = padded[sel, :, dy : dy + 32, dx : dx + 32]
    return out


@torch.no_grad()
def init_identity(model: nn.Module) -> None:
    """airbench's partial identity (Dirac) initialisation of the 3x3 convolutions: each layer
    starts by passing its input channels through, which trains faster than a random start."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            nn.init.dirac_(m.weight[: m.in_channels])


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, x: torch.Tensor, eps: float = 5e-4) -> None:
    c, (h, w) = x.shape[1], conv.weight.shape[2:]
    patches = x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).float()
    flat = patches.reshape(len(patches), -1)
    cov = flat.T @ flat / len(flat)
    values, vectors = torch.linalg.eigh(cov, UPLO="U")
    values, vectors = values.flip(0).view(-1, 1, 1, 1), vectors.T.reshape(c * h * w, c, h, w).flip(0)
    scaled = vectors / torch.sqrt(values + eps)
    conv.weight.copy_(torch.cat((scaled, -scaled)))


if __name__ == "__main__":
    main()
