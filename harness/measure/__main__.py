"""Stage 2's process: `python -m harness.measure`.

Started by the parent while stage 1 still runs: it imports torch, then waits for its job on
stdin (`harness.wire`; sent, with the exported program in its read-only inbox, once stage 1 has
finished). It reads the program
with the harness's own reader, refuses any operator without a counting rule, prepares the graph
on the device, checks that predictions do not depend on the other images of a batch, counts
and measures on probe images, and predicts the images (the test images shuffled among the checks'
images, in the random order the parent chose), all with that one graph. It sends `result.json` (a
`harness.jobs.MeasureResult`, built and validated here, or a `Failure`). Exit status: 0 done, 2 refused, 3 failed.
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import Any

from .. import wire
from ..errors import HarnessError, RunError, dtype_hint
from ..jobs import RESULT, MeasureJob, MeasureResult
from ..stage import Sent, serve

# Packages whose version can change a count or a prediction: export decompositions, kernels, fake
# quantisation, image decoding, the arithmetic of the checks. Their versions go into every record.
PACKAGES = ("torch", "torchvision", "brevitas", "numpy", "pillow")
BATCH = {"cpu": 250, "cuda": 1000}  # images per forward pass when the rules leave it unset (benchmarks/)
PROBE_SEED = 0
# Largest change of a logit, relative to the largest logit, when the same images come in another batch.
# Kernels differ with the batch size, and a fake-quantised model then rounds a few activations to the
# neighbouring level: its logits move by up to 1.5 % (measured on the examples). Statistics of the
# batch move them by far more.
BATCH_TOLERANCE = 0.05  # of the largest centred logit
CHECKED_IMAGES = 16  # images whose logits are compared alone and in the predicted batches
MEASURED_BATCHES = 8  # predicted batches also measured (MACs, activation bits), chosen at random


def main() -> int:
    t0 = time.perf_counter()
    import numpy as np  # noqa: F401 - imported while stage 1 runs
    import torch  # noqa: F401

    imported = round(time.perf_counter() - t0, 3)

    def work(job: MeasureJob) -> Sent:
        result = run(job)
        return {RESULT: result.model_copy(update={"timings": {**result.timings, "import": imported}})}

    return serve(MeasureJob, work, "the exported model failed while running: ", dtype_hint)


def run(job: MeasureJob) -> MeasureResult:
    import numpy as np
    import torch

    from . import archive, graph, profile

    timings: dict[str, float] = {}
    t = time.perf_counter()
    device = _device(job.device)
    _pin_float32(torch)
    program = archive.read(job.graph)
    graph.bound(program, job.probe_images, job.half_weights, job.half_inputs)
    g = graph.Graph(program, device, half_weights=job.half_weights, half_inputs=job.half_inputs)
    timings["load"] = time.perf_counter() - t
    t = time.perf_counter()
    images = np.load(job.images, mmap_mode="r") if job.images else None
    prep = _Prep(job.normalize, device)
    if images is not None:
        probe = np.asarray(images[: job.probe_images])
    else:
        probe = np.random.default_rng(PROBE_SEED).integers(0, 256, size=(job.probe_images, 32, 32, 3), dtype=np.uint8)
    x = prep(probe)
    with torch.inference_mode():
        result, probe_logits = profile.profile(g, x)
        if images is None or not job.predict:  # profile: check on the probe; otherwise the first batch checks it
            _batch_independent(probe_logits, g.run(x.flip(0)).flip(0), "reordered")
        g.channels_last(x[:2])
    timings["profile"] = time.perf_counter() - t
    result.update(device=_describe(device), torch_version=torch.__version__, packages=versions(), warnings=[])
    if images is not None and job.predict:
        t = time.perf_counter()
        batch = job.batch_size or BATCH.get(device.type, BATCH["cpu"])
        # This stage's own random choices, which the graph cannot know: the images whose answers are
        # compared in other company, and the predicted batches (and an image in each) measured.
        rng = np.random.default_rng(secrets.randbits(128))
        checked = np.sort(rng.choice(len(images), size=min(CHECKED_IMAGES, len(images)), replace=False))
        batches = -(-len(images) // batch)
        measured = set(rng.choice(batches, size=min(MEASURED_BATCHES, batches), replace=False).tolist())
        kept: dict[int, Any] = {}
        seen: dict[str, tuple[int, int]] = {}
        result["predictions"] = predict(g, images, prep, batch, _Progress(len(images)), keep=set(checked.tolist()),
                                        kept=kept, measured=measured, seen=seen, rng=rng)
        with torch.inference_mode():
            alone = g.run(prep(images[checked]))
        _batch_independent(alone, torch.stack([kept[int(i)] for i in checked]),
                           f"between a batch of its own {len(checked)} and the predicted batches of {batch}")
        profile.worst(result, seen)
        timings["inference"] = time.perf_counter() - t
    result["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return profile.finish(result)


class _Progress:
    """Says on stderr how many images are done (`harness.wire.PROGRESS`), for the parent's progress bar."""

    def __init__(self, total: int):
        self.total = total

    def __call__(self, done: int) -> None:
        print(f"{wire.PROGRESS} {done}/{self.total}", file=sys.stderr, flush=True)


def predict(g, images, prep, batch: int, progress=None, keep: set | None = None, kept: dict | None = None,
            measured: set | None = None, seen: dict | None = None, rng=None) -> list[int]:
    """Predicted class of every image (uint8 HWC array), in batches, from the graph.

    The logits of the images at positions `keep` go into `kept`; the batches numbered in
    `measured` are also measured (`Graph.measure`, on an image `rng` picks), the worst of each
    counted operation kept in `seen`; `progress(images done)` after each batch."""
    kept = {} if kept is None else kept
    seen = {} if seen is None else seen
    import torch

    from .profile import check_output, finite

    preds = []
    with torch.inference_mode():
        for k, i in enumerate(range(0, len(images), batch)):
            x = prep(images[i : i + batch])
            if measured and k in measured:
                out, found = g.measure(x, int(rng.integers(x.shape[0])))
                for name, (macs, b) in found.items():
                    old = seen.get(name, (0, 1))
                    seen[name] = (max(old[0], macs), max(old[1], b))
            else:
                out = g.run(x)
            out = finite(check_output(out, x.shape[0]), i)
            for j in (keep or ()):
                if i <= j < i + x.shape[0]:
                    kept[j] = out[j - i]
            preds.append(out.argmax(1).cpu())
            if progress is not None:
                progress(i + x.shape[0])
    return torch.cat(preds).tolist() if preds else []


def _batch_independent(alone, together, how: str) -> None:
    """Refuse a graph whose answer for an image changes with the other images of its batch:
    `alone` and `together` are the logits of the same images in two different batches. Logits
    are compared centred on each image's mean (a constant added to every logit changes no answer
    and widens nothing), against the largest centred logit; and an answer may change only where
    its two best logits lie within that tolerance."""
    a = alone.float() - alone.float().mean(dim=1, keepdim=True)
    b = together.float() - together.float().mean(dim=1, keepdim=True)
    tolerance = BATCH_TOLERANCE * max(1.0, float(a.abs().max()))
    worst = float((a - b).abs().max())
    top = a.topk(2, dim=1).values
    clear = (top[:, 0] - top[:, 1]) > tolerance
    moved = int(((a.argmax(1) != b.argmax(1)) & clear).sum())
    if worst > tolerance or moved:
        raise RunError(f"the model's answer for an image depends on the other images of its batch (its centred "
                       f"logits moved by {worst:.3g} {how}, {moved} of {len(a)} clear answers changed); each image "
                       "must be classified alone")


class _Prep:
    """uint8 HWC images -> normalised, contiguous float32 NCHW tensor on the device."""

    def __init__(self, normalize, device):
        import torch

        self.device = device
        self.mean = self.std = None
        if normalize is not None:
            self.mean = torch.tensor(normalize.mean, device=device).view(1, 3, 1, 1)
            self.std = torch.tensor(normalize.std, device=device).view(1, 3, 1, 1)

    def __call__(self, batch):
        import numpy as np
        import torch

        x = torch.from_numpy(np.array(batch)).to(self.device).permute(0, 3, 1, 2).float() / 255
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.contiguous()


def _pin_float32(torch) -> None:
    """IEEE float32 convolutions and matrix products, deterministic cuDNN algorithms."""
    cudnn = torch.backends.cudnn
    if hasattr(cudnn, "conv"):  # torch >= 2.9; mixing in the legacy flags is an error there
        cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    cudnn.deterministic, cudnn.benchmark = True, False


def versions() -> dict[str, str]:
    """The versions of Python and of every package that can change a count or a prediction, as this
    stage runs them (under docker: the image's, not the parent's)."""
    import platform
    from importlib import metadata

    import torch

    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    found["torch"] = torch.__version__  # with its build tag (+cu130, +cpu)
    found["cuda"] = torch.version.cuda or "none"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    found["cudnn"] = str(cudnn) if cudnn else "none"
    return found


def _device(name: str):
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def _describe(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


if __name__ == "__main__":
    sys.exit(main())
