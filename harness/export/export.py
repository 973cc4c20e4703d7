"""Export a built model with `torch.export`: dynamic batch, a random example input; decomposed to
core ATen when it uses an operator the counting table does not hold.

The exported program is what the judge counts and evaluates (stage 2), so the submission's
Python never runs again after this. A model that does not export gets a message in plain words,
naming the line of the student's code where tracing stopped; one that exports but returns more than
the logits, or updates buffers, is refused here with what to change (`mistakes`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import HarnessError, SubmissionError, dtype_hint
from . import imports, mistakes
from .loader import student_line
from .mistakes import refuse_torch_ao

EXAMPLE_BATCH = 4  # images in the random example input
EXAMPLE_SEED = 0


def export(model: nn.Module, path: Path, submission: str) -> None:
    """Export `model` into `path` (a .pt2 archive). Stage 1's time is measured by the parent, from
    the outside (the record's `timings.build`)."""
    refuse_torch_ao(model)
    gen = torch.Generator().manual_seed(EXAMPLE_SEED)
    x = torch.rand(EXAMPLE_BATCH, 3, 32, 32, generator=gen)
    try:
        with imports.guard(submission):  # forward is the submission's code too
            batch = torch.export.Dim.DYNAMIC
            program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},), strict=False)
    except HarnessError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure to trace is the submission's
        raise SubmissionError(_explain(err, submission, model=model)) from err  # the traceback keeps its frames
    mistakes.refuse_outputs(program)
    if not _counted(program):  # decompose only what the table does not hold (it costs up to 4 s)
        try:
            program = program.run_decompositions()
        except Exception as err:  # noqa: BLE001
            raise SubmissionError(_explain(err, submission, "its operations could not be decomposed to core ATen")) \
                from err
    mistakes.refuse_mutations(program, model)  # after decomposing: torch.ao's fused observers show only then
    torch.export.save(program, path)


def _counted(program) -> bool:
    """Whether every operator of the exported graph is in the counting table already (stage 2
    checks the same again, on the file)."""
    from .. import ops

    for node in program.graph.nodes:
        if node.op == "call_function":
            target = node.target
            name = f"torch.ops.{target}" if isinstance(target, torch._ops.OpOverload) else \
                f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}"
            if ops.lookup(name) is None:
                return False
    return True


def _explain(err: Exception, submission: str, what: str = "it does not export with torch.export",
             model: nn.Module | None = None) -> str:
    first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
    where = student_line(err, submission)
    if model is not None and ("Half" in first or "BFloat16" in first) and (half := mistakes.half_tensors(model)):
        return mistakes.half_message(half, model, f"{type(err).__name__}: {first}{where}")
    if model is not None and (found := mistakes.observers(model)):
        return (f"the model cannot be judged: it holds torch.ao observers or fake quantisers ({mistakes.few(found)}) "
                f"({type(err).__name__}: {first}). {mistakes.QAT_WAY}")
    if (hint := dtype_hint(first)):
        what += "; " + hint
    if "Constraints violated" in first:
        what += ("; the batch size must stay free, and this model fixes it (a reshape to a constant batch, "
                 "or an output that does not depend on the input)")
    where += mistakes.file_hint(err, "")
    return (f"the model cannot be judged: {what} ({type(err).__name__}: {first}){where}. The judge counts and "
            "evaluates the exported graph, so the forward pass must be traceable: no Python-side data-dependent "
            "branches on tensor values, no .item()/.tolist()/numpy on tensors, no file or network access. "
            "See submissions/README.md, 'The model must export'")
