"""The usual mistakes of a submission, recognised in stage 1, each told with what to change.

Each rule looks at what the mistake leaves behind, whatever the model: torch.ao's quantized
tensors and packed parameters in the weights or its quantized modules in the model, buffers the
exported graph updates (and whether torch.ao's observers own them), the key patterns of
`torch.nn.utils.prune`, `torch.compile` and `nn.DataParallel`, a `torch.compile`d module, a
relative path that is not found, float16 weights, an output that is not one tensor. `loader` and
`export` call them where the mistake shows.
"""

from __future__ import annotations

import errno
from pathlib import Path

import torch
from torch import nn

from ..errors import SubmissionError

SHOWN = 3  # names shown before "and N more"
_AO_MODULES = ("torch.ao.nn.quantized", "torch.nn.quantized", "torch.ao.nn.intrinsic.quantized")
AO_WAY = ("The judge does not run torch.ao's quantized kernels: it runs a float32 graph and measures the bits "
          "of the numbers it multiplies. Submit the float model fake-quantised instead: float weights on a grid "
          "of 2^b levels (w = torch.round(w / scale) * scale, per tensor or per output channel), activations "
          "rounded the same way in forward, or brevitas layers, and declare weight_bits/activation_bits "
          "(submissions/README.md, 'How claims are checked')")
QAT_WAY = ("They are torch.ao quantisation-aware training's observers and fake quantisers (prepare_qat), which "
           "the judge does not run, not even with observers disabled. Freeze the quantisation before saving: "
           "write each layer's fake-quantised weight (layer.weight_fake_quant(layer.weight)) into a plain float "
           "layer and round activations in forward with fixed scales, or use brevitas; and declare the bits "
           "(submissions/README.md, 'How claims are checked')")


def few(items: list[str], n: int = SHOWN) -> str:
    """'a, b, c and 4 more'."""
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


# --- torch.ao ---------------------------------------------------------------------------------------

def refuse_torch_ao(model: nn.Module) -> None:
    """torch.ao post-training quantised modules hold packed C++ weights that neither export nor count."""
    quantized = sorted({type(m).__module__ + "." + type(m).__name__ for m in model.modules()
                        if type(m).__module__.startswith(_AO_MODULES)})
    if quantized:
        raise SubmissionError(f"the model uses torch.ao quantized modules ({few(quantized)}), whose packed weights "
                              f"the judge cannot export, count or check. {AO_WAY}")


def torch_ao_entries(state: dict) -> list[str]:
    """The keys of a state_dict that only torch.ao's quantized modules write: quantized tensors (alone
    or in a tuple) and packed parameters."""
    def quantized(v) -> bool:
        if isinstance(v, (tuple, list)):
            return any(quantized(x) for x in v)
        return isinstance(v, torch.Tensor) and v.is_quantized

    return [str(k) for k, v in state.items() if quantized(v) or "_packed_params" in str(k)]


def torch_ao_weights(path: Path, keys: list[str]) -> SubmissionError:
    return SubmissionError(f"{path}: holds torch.ao quantized weights ({few(keys)}), as torch.ao.quantization's "
                           f"convert or quantize_dynamic make them. {AO_WAY}")


def observers(model: nn.Module) -> list[str]:
    """The names of the model's torch.ao observers and fake quantisers (quantisation-aware training)."""
    from torch.ao.quantization import FakeQuantizeBase
    from torch.ao.quantization.observer import ObserverBase

    return [name for name, m in model.named_modules() if isinstance(m, (FakeQuantizeBase, ObserverBase))]


def refuse_mutations(program, model: nn.Module) -> None:
    """Refuse an exported program that updates buffers (naming them, with the way out for torch.ao's
    observers) or writes into its input."""
    from torch.export.graph_signature import OutputKind

    specs = program.graph_signature.output_specs
    if any(s.kind == OutputKind.USER_INPUT_MUTATION for s in specs):
        raise SubmissionError("the model writes into its input images in place (an in-place operation such as "
                              "x.mul_(...) or x[...] = ... on the input): compute a new tensor instead (x = x * ...)")
    changed = [str(s.target) for s in specs if s.kind in (OutputKind.BUFFER_MUTATION, OutputKind.PARAMETER_MUTATION)]
    if not changed:
        return
    owners = set(observers(model))
    way = QAT_WAY if any(t.rpartition(".")[0] in owners for t in changed) else (
        "Compute forward without updating a buffer or parameter (no running statistics, counters or caches kept "
        "across calls)")
    raise SubmissionError(f"the model changes {len(changed)} of its buffers when it runs ({few(changed)}); the judge "
                          f"runs the saved model as a fixed graph, where nothing may change. {way}")


# --- weights that do not match ----------------------------------------------------------------------

_PREFIXES = (("module.", "the 'module.' prefix of nn.DataParallel: save model.module.state_dict(), or strip it: "
                         "{k.removeprefix('module.'): v for k, v in state.items()}"),
             ("_orig_mod.", "the '_orig_mod.' prefix of a torch.compile'd model: save model._orig_mod.state_dict(), "
                            "or strip it: {k.replace('_orig_mod.', ''): v for k, v in state.items()}"))


def weights_hint(missing: list[str], unexpected: list[str]) -> str:
    """What to change when the weights' keys do not match the model's, for the patterns mistakes leave."""
    missing_set, unexpected_set = set(missing), set(unexpected)
    for prefix, what in _PREFIXES:
        stripped = {k.removeprefix(prefix).replace("." + prefix, ".") for k in unexpected}
        if missing and prefix in "".join(unexpected) and missing_set <= stripped:
            return f". Every key carries {what}"
        added = {k.removeprefix(prefix).replace("." + prefix, ".") for k in missing}
        if unexpected and prefix in "".join(missing) and unexpected_set <= added:
            return (f". The factory's model carries the '{prefix}' prefix and the weights do not: return the plain "
                    f"module from the factory (not nn.DataParallel(...) or torch.compile(...))")
    pruned = [k for k in missing if f"{k}_orig" in unexpected_set and f"{k}_mask" in unexpected_set]
    if pruned:
        name = pruned[0].rpartition(".")[2]
        return (f". The weights keep torch.nn.utils.prune's reparametrisation of {few(pruned)} ({name}_orig and "
                f"{name}_mask): call torch.nn.utils.prune.remove(module, {name!r}) on each pruned module before "
                f"saving (its zeros stay and count as pruning), or prune the factory's model the same way "
                f"(prune.identity(module, {name!r})) so that they load")
    rebuilt = [k for k in unexpected if f"{k}_orig" in missing_set and f"{k}_mask" in missing_set]
    if rebuilt:
        return (f". The factory prunes {few(rebuilt)} with torch.nn.utils.prune, but the weights were saved after "
                "prune.remove: leave the pruning out of the factory (the zeros in the weights count as pruning)")
    return ""


# --- the factory ------------------------------------------------------------------------------------

def refuse_compiled(model: nn.Module, where: str) -> None:
    """A torch.compile'd module (torch._dynamo's OptimizedModule): the judge exports the plain one."""
    for name, m in model.named_modules():
        inner = getattr(m, "_orig_mod", None)
        if isinstance(inner, nn.Module) and type(m).__name__ == "OptimizedModule":
            what = "returned" if not name else f"returned a model whose submodule {name!r} is"
            raise SubmissionError(
                f"{where} {what} a torch.compile'd module (OptimizedModule around {type(inner).__name__}): build it "
                "without torch.compile and return the plain module; the judge exports it with torch.export itself "
                "(torch.compile is for training)")


def file_hint(err: BaseException | None, weights: str) -> str:
    """What to change when the submission's code did not find a file: relative paths are read from the
    current directory, which is not the submission's folder in stage 1."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError) and err.errno == errno.ENOENT and isinstance(err.filename, (str, Path)):
            name = str(err.filename)
            loads = (f" (the judge loads {weights} into the model itself: the factory need not)"
                     if Path(name).name == Path(weights).name else "")
            if not Path(name).is_absolute():
                return (f". A relative path ({name!r}) is read from the current directory, which is not your "
                        "submission's folder when the judge runs it: build paths from the folder of your code, "
                        f"Path(__file__).parent / {name!r}" + loads)
            return (". The judge sees only your submission's folder: ship the file in it and build its path from "
                    "Path(__file__).parent" + loads)
        err, seen = err.__cause__ or err.__context__, seen + 1
    return ""


# --- what export shows ------------------------------------------------------------------------------

def half_tensors(model: nn.Module) -> list[str]:
    """The model's parameters and buffers in float16 or bfloat16."""
    return [name for name, t in [*model.named_parameters(), *model.named_buffers()]
            if t.dtype in (torch.float16, torch.bfloat16)]


def half_message(names: list[str], model: nn.Module, why: str) -> str:
    """Float16 weights where the judge feeds float32 images; `why` says what failed, where."""
    dtype = str(dict([*model.named_parameters(), *model.named_buffers()])[names[0]].dtype).removeprefix("torch.")
    return (f"the model cannot be judged: its weights are {dtype} ({few(names)}) and the judge feeds float32 images "
            f"({why}). Keep the model float32 (no .half() or .to({dtype})) and declare weight_bits: 16: the judge "
            "rounds the weights to float16 itself, so the claim verifies (activation_bits: 16 does the same for "
            "every layer's input)")


def refuse_outputs(program) -> None:
    """Refuse a program whose output is not one tensor (a tuple, a list, a dict, a number), describing it."""
    from torch.export.graph_signature import OutputKind, TensorArgument

    spec = program.call_spec.out_spec
    users = [s.arg for s in program.graph_signature.output_specs if s.kind == OutputKind.USER_OUTPUT]
    if len(users) == 1 and isinstance(users[0], TensorArgument) and (spec is None or spec.is_leaf()):
        return
    values = {n.name: n.meta.get("val") for n in program.graph.nodes}
    batch = next((str(v.shape[0]) for n in program.graph.nodes if n.op == "placeholder"
                  and n.name not in program.graph_signature.inputs_to_parameters
                  and n.name not in program.graph_signature.inputs_to_buffers
                  and isinstance(v := n.meta.get("val"), torch.Tensor) and v.dim()), None)
    shown = [_describe(values.get(getattr(a, "name", None)) if isinstance(a, TensorArgument) else
                       getattr(a, "value", a), batch) for a in users]
    keys = list(spec.context) if spec is not None and spec.type is dict and len(spec.context) == len(shown) else None
    if keys is not None:
        shown = [f"{k!r}: {s}" for k, s in zip(keys, shown, strict=True)]
    kind = spec.type.__name__ if spec is not None and spec.type is not None else "value"
    what = f"a {kind} of {len(shown)}: " + ", ".join(shown[:6]) + (", ..." if len(shown) > 6 else "")
    raise SubmissionError(f"the model returns {what}; it must return the logits alone, one tensor of shape "
                          "[N, 10] (N the batch size): return logits, not logits and anything else")


def _describe(value, batch: str | None) -> str:
    if isinstance(value, torch.Tensor):
        dims = ["N" if batch is not None and str(d) == batch else str(d) for d in value.shape]
        return f"Tensor[{', '.join(dims)}]"
    return type(value).__name__ if value is not None else "None"
