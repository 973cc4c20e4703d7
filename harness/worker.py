"""The worker: the only process that runs a submission's code.

    python -m harness.worker JOB.json

It reads a job (where the submission is, the unlabelled test images, the device, what was
declared), builds the model, counts and measures it on probe images, predicts every
test image and the flipped subset, and writes `result.json` into the job's `out` folder.
It never sees labels; the parent computes accuracy and the score. Exit status: 0 done,
2 invalid submission, 3 the submission failed while running.

Float32 is IEEE float32 on every device: the worker turns off TF32 (which PyTorch uses by
default for float32 convolutions on NVIDIA GPUs since Ampere, reading 10 of the 23 mantissa
bits) and cuDNN's autotuning, so a GPU measures what the student's CPU measured, up to the
order of additions, and twice the same.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from .errors import EXIT_ERROR, HarnessError

_PROBE_SEED = 0
BATCH = {"cpu": 250, "cuda": 1000}  # images per forward pass when the rules leave it unset (measured: benchmarks/)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    out = Path(job["out"])
    try:
        result = run(job)
        result["ok"] = True
        code = 0
    except HarnessError as err:
        result = {"ok": False, "kind": "invalid" if err.exit_code == 2 else "error", "message": str(err),
                  "traceback": _tb(err)}
        code = err.exit_code
    except Exception as err:  # noqa: BLE001 - anything else the submission's code raised
        result = {"ok": False, "kind": "error", "message": f"{type(err).__name__}: {err}", "traceback": _tb(err)}
        code = EXIT_ERROR
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(out / "result.json")
    return code


def run(job: dict) -> dict:
    """Do the job described in the module docstring; returns the result mapping."""
    t0 = time.perf_counter()
    import numpy as np
    import torch

    from . import loader, measure

    device = _device(job.get("device", "auto"))
    timings: dict[str, float] = {"import": time.perf_counter() - t0}
    t = time.perf_counter()
    model = loader.build(job["submission"], job["code"], job["factory"], job["weights"])
    declared = job["declared"]
    half = device.type == "cuda" and declared["weight_bits"] == 16 and declared["activation_bits"] == 16
    if declared["weight_bits"] == 16:
        model = model.half() if half else model.half().float()  # float16 rounding of every weight
    model = model.to(device)
    _pin_float32(torch)  # after the factory, which may have changed these flags
    timings["load"] = time.perf_counter() - t

    images = np.load(job["images"], mmap_mode="r") if job.get("images") else None
    prep = _Prep(job.get("normalize"), device, torch.float16 if half else torch.float32)
    round_inputs = declared["activation_bits"] == 16 and not half
    t = time.perf_counter()
    probe = images[: job["probe_images"]] if images is not None else _random_images(job["probe_images"])
    x = prep(probe)
    profile = measure.profile(model, x, round_inputs)
    measure.channels_last(model, x[:2])
    timings["profile"] = time.perf_counter() - t

    result = {**profile, "device": _describe(device), "torch_version": torch.__version__}
    if images is not None:
        t = time.perf_counter()
        batch = job.get("batch_size") or BATCH.get(device.type, BATCH["cpu"])
        with measure.rounding(round_inputs):
            result["predictions"] = measure.predict(model, images, prep, batch)
            flip = np.ascontiguousarray(images[np.asarray(job["flip_indices"], dtype=np.int64)][:, :, ::-1])
            result["flip_predictions"] = measure.predict(model, flip, prep, batch)
        timings["inference"] = time.perf_counter() - t
    result["timings"] = timings
    return result


class _Prep:
    """uint8 HWC images -> normalised, contiguous float NCHW tensor on the device."""

    def __init__(self, normalize: dict | None, device, dtype):
        import torch

        self.device, self.dtype = device, dtype
        self.mean = self.std = None
        if normalize:
            self.mean = torch.tensor(normalize["mean"], device=device).view(1, 3, 1, 1)
            self.std = torch.tensor(normalize["std"], device=device).view(1, 3, 1, 1)

    def __call__(self, batch):
        import numpy as np
        import torch

        x = torch.from_numpy(np.array(batch)).to(self.device).permute(0, 3, 1, 2).float() / 255
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.to(self.dtype).contiguous()


def _pin_float32(torch) -> None:
    """IEEE float32 convolutions and matrix products, deterministic cuDNN algorithms."""
    cudnn = torch.backends.cudnn
    if hasattr(cudnn, "conv"):  # torch >= 2.9; mixing in the legacy flags is an error there
        cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    cudnn.deterministic, cudnn.benchmark = True, False


def _random_images(n: int):
    import numpy as np

    return np.random.default_rng(_PROBE_SEED).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


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


def _tb(err: BaseException) -> str:
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))[-8000:]


if __name__ == "__main__":
    sys.exit(main())
