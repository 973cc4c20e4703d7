"""Human-readable text for a result record: the per-layer receipt, counts, claims and verdict."""

from __future__ import annotations

from types import SimpleNamespace

from ..record import Record, describe
from ..score import HALF_BITS, advice, what_if

_KEYS = ("structured_pruning", "unstructured_pruning", "weight_bits", "activation_bits")


def render(rec: Record, layers: bool = True) -> str:
    """The record as text for a terminal."""
    lines = [f"{rec.team}/{rec.name}  ({rec.directory})  status: {rec.status}"]
    for err in rec.errors:
        lines.append("  error: " + err.replace("\n", "\n         "))
    if rec.status != "ok" and rec.params is None:
        return "\n".join(lines)
    if layers and rec.layers:
        lines.append(_receipt(rec))
    lines.append(f"  weights w = {rec.params:,}   MACs f = {rec.macs:,} per image")
    lines.append(f"  {'':22} {'declared':>10} {'measured':>10} {'credited':>10}")
    for key in _KEYS:
        d, m, e = (getattr(c, key) for c in (rec.declared, rec.measured, rec.effective))
        fmt = (lambda v: f"{v:10.4f}") if "pruning" in key else (lambda v: f"{v:10d}")
        lines.append(f"  {key:22} {fmt(d)} {fmt(m)} {fmt(e)}")
    verdict = "verified" if rec.claims_verified else "NOT verified: " + "; ".join(rec.claim_failures)
    lines.append(f"  claims: {verdict}")
    s = rec.score
    lines.append(f"  score = {s.params_term:.4f} (weights) + {s.ops_term:.4f} (MACs) = {s.total:.4f}")
    if rec.effective.structured_pruning > s.ops_pruning + 1e-12:
        lines.append(f"  structured pruning credited on the MAC term: {s.ops_pruning:.4f} (the share of MACs its "
                     "zero channels carry)")
    lines += _guidance(rec)
    if rec.accuracy is not None:
        lines.append(f"  accuracy: {rec.accuracy:.2%} ({rec.correct:,}/{rec.total:,})")
    for c in rec.checks:
        lines.append(f"  check {c.name}: {describe(c)}")
    if rec.flip is not None:
        f = rec.flip
        lines.append(f"  flip check on {f.subset} images: {f.accuracy:.2%} original, {f.flipped_accuracy:.2%} flipped"
                     + ("  FLAGGED" if f.flagged else ""))
    for w in rec.warnings:
        lines.append(f"  warning: {w}")
    if rec.kind == "evaluate" and rec.status == "ok":
        lines.append("  ELIGIBLE" if rec.eligible else "  not eligible: " + "; ".join(rec.reasons))
    return "\n".join(lines)


def _guidance(rec: Record) -> list[str]:
    """What the student may declare, what that and lower bits would score, and why a structured
    pruning claim may measure nothing."""
    refs = rec.provenance.rules
    if rec.measured is None or not {"reference_params", "reference_macs"} <= set(refs):
        return []
    rules = SimpleNamespace(**refs)
    best, at_best = advice(rec.params, rec.macs, rec.measured, rec.structured_mac_share, rules)
    lines = [f"  the most you may declare: structured_pruning {best.structured_pruning:.4f}, unstructured_pruning "
             f"{best.unstructured_pruning:.4f}, weight_bits {best.weight_bits}, activation_bits "
             f"{best.activation_bits}: score {at_best.total:.4f}"]
    rounded = [k for k in ("weight_bits", "activation_bits")
               if getattr(best, k) == HALF_BITS and getattr(rec.measured, k) > HALF_BITS]
    if rounded:
        lines.append(f"  ({' and '.join(rounded)} {HALF_BITS}: the judge rounds to float16 itself when 16 is declared; "
                     "the accuracy may move by a few hundredths of a point)")
    rows = what_if(rec.params, rec.macs, rec.measured, rec.structured_mac_share, rules)
    if rows:
        lines.append("  what if (hypothetical, NOT verified: the model would have to be quantised so): "
                     + ", ".join(f"{b} bits {total:.4f}" for b, total in rows))
    if rec.declared is not None and rec.declared.structured_pruning > 0 and rec.measured.structured_pruning == 0:
        lines.append("  note: structured pruning counts output channels that are all zero and still in the model; "
                     "channels removed from the architecture are already absent from w and f, so they need no claim")
    return lines


def _receipt(rec: Record) -> str:
    head = f"  {'layer':32} {'op':10} {'weights':>10} {'MACs':>13} {'zeros':>9} {'w bits':>6} {'a bits':>6}"
    rows = [head, "  " + "-" * (len(head) - 2)]
    for r in rec.layers:
        wb = "" if r.weight_bits is None else str(r.weight_bits)
        ab = "" if r.activation_bits is None else str(r.activation_bits)
        zeros = f"{r.zeros:,}" if r.op in ("conv", "matmul") else ""
        row = f"  {_short(r.layer):32} {r.op:10} {r.params:>10,} {r.macs:>13,} {zeros:>9} {wb:>6} {ab:>6}"
        rows.append(row.rstrip())
    return "\n".join(rows)


def _short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]
