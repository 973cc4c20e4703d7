"""One view of a record: what the terminal and the board's run page show of it, built once.

`build(record)` turns a `Record` into a `View`: its title (team, name, directory, status), its
sections in the order the terminal prints them, its verdict and its provenance. A section is one of
three kinds: `Facts` (key-value facts; a fact without a key is a sentence), a `Table` (columns and
rows of text) or `Messages` (errors, what the student may declare, warnings). The view writes every
number as text; the two formatters only lay the sections out:

* `text`: what `python -m harness profile` and `evaluate` print (the receipts quoted in
  docs/judging.md and submissions/README.md); the provenance is left out (`--json` has it);
* `html`: the body of the board's run page, every text escaped; the receipt (long) comes after the
  other sections, the provenance last. `html_table` is its table, for the board's other pages.

Both the judge's report and the board import this module; it imports neither.
"""

from __future__ import annotations

import html as _html
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .record import Record, describe
from .score import HALF_BITS, Reference, advice, what_if
from .text import relative

KEYS = ("structured_pruning", "unstructured_pruning", "weight_bits", "activation_bits")
WEIGHT_OPS = ("conv", "matmul")  # the ops whose zeros the receipt shows
LATE = ("receipt",)  # sections the run page shows after the others


@dataclass(frozen=True)
class Facts:
    """Key-value facts; a fact whose key is empty is a sentence of its own."""

    key: str
    title: str
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """Columns and rows of text; `widths`: the columns' widths in the terminal (a longer text cell
    keeps its end), `numeric`: the right-aligned columns, `ruled`: a line under the header there."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]
    numeric: frozenset[int] = frozenset()
    ruled: bool = False


@dataclass(frozen=True)
class Messages:
    """A list of messages, each with `label` in the terminal ("error: ..."); `verbatim`: their line
    breaks and spacing matter (tracebacks)."""

    key: str
    title: str
    label: str
    items: tuple[str, ...]
    verbatim: bool = False


Section = Facts | Table | Messages


@dataclass(frozen=True)
class Verdict:
    """Eligible or not and why; `final`: a judged evaluation (the terminal says it last, only then)."""

    eligible: bool
    why: str
    final: bool


@dataclass(frozen=True)
class View:
    """A record as people see it: who and where, the sections, the verdict, the provenance."""

    team: str
    name: str
    directory: str
    status: str
    sections: tuple[Section, ...]
    verdict: Verdict
    provenance: tuple[Section, ...]


# -- the view -------------------------------------------------------------------------------------------

def build(rec: Record, *, relative_paths: bool = False, record_file: str | None = None) -> View:
    """The view of `rec`; `relative_paths`: its texts with paths relative to the submission (the board:
    never the instructor's folders); `record_file`: the record's file name, for the provenance."""
    rel: Callable[[str], str] = (lambda t: relative(t, rec.directory)) if relative_paths else (lambda t: t)
    sections: list[Section] = []
    if rec.errors:
        sections.append(Messages("errors", "Errors", "error", tuple(rel(x) for x in rec.errors), verbatim=True))
    if rec.status == "ok" or rec.params is not None:
        sections += _measured(rec, rel)
    sections = [s for s in sections if _filled(s)]
    why = rel("; ".join(rec.reasons) or ("" if rec.status == "ok" else rec.status))
    verdict = Verdict(rec.eligible, why, rec.kind == "evaluate" and rec.status == "ok")
    return View(rec.team, rec.name, rec.directory, rec.status, tuple(sections), verdict,
                tuple(s for s in _provenance(rec, record_file) if _filled(s)))


def _measured(rec: Record, rel) -> list[Section]:
    """The sections of a measured model, in the terminal's order."""
    out: list[Section] = []
    if rec.layers:
        out.append(receipt(rec))
    if rec.params is not None and rec.macs is not None:
        out.append(Facts("counts", "Weights and MACs",
                         (("", f"weights w = {rec.params:,}   MACs f = {rec.macs:,} per image"),)))
    if rec.declared is not None and rec.measured is not None and rec.effective is not None:
        rows = tuple((k, *(_number(getattr(c, k)) for c in (rec.declared, rec.measured, rec.effective)))
                     for k in KEYS)
        out.append(Table("compression", "Compression: declared, measured, credited",
                         ("", "declared", "measured", "credited"), rows, (22, 10, 10, 10), frozenset({1, 2, 3})))
    scored: list[tuple[str, str]] = []
    if rec.declared is not None:
        scored.append(("claims", "verified" if rec.claims_verified
                       else "NOT verified: " + rel("; ".join(rec.claim_failures))))
    if (s := rec.score) is not None:
        scored.append(("", f"score = {s.params_term:.4f} (weights) + {s.ops_term:.4f} (MACs) = {s.total:.4f}"))
        if rec.effective is not None and rec.effective.structured_pruning > s.ops_pruning + 1e-12:
            scored.append(("structured pruning credited on the MAC term",
                           f"{s.ops_pruning:.4f} (the share of MACs its zero channels carry)"))
    out.append(Facts("score", "Claims and score", tuple(scored)))
    out.append(Messages("guidance", "What you may declare", "", tuple(guidance(rec))))
    results: list[tuple[str, str]] = []
    if rec.accuracy is not None:
        results.append(("accuracy", f"{rec.accuracy:.2%} ({rec.correct:,}/{rec.total:,})"))
    results += [(f"check {c.name}", rel(describe(c))) for c in rec.checks]
    if (f := rec.flip) is not None:
        results.append((f"flip check on {f.subset} images", f"{f.accuracy:.2%} original, {f.flipped_accuracy:.2%} "
                        "flipped" + ("  FLAGGED" if f.flagged else "")))
    out.append(Facts("accuracy", "Accuracy and checks", tuple(results)))
    out.append(Messages("warnings", "Warnings", "warning", tuple(rel(w) for w in rec.warnings), verbatim=True))
    return out


def receipt(rec: Record) -> Table:
    """The per-layer receipt: every counted operation."""
    rows = tuple((x.layer, x.op, f"{x.params:,}", f"{x.macs:,}", f"{x.zeros:,}" if x.op in WEIGHT_OPS else "",
                  _number(x.weight_bits), _number(x.activation_bits)) for x in rec.layers)
    return Table("receipt", "Receipt: every counted operation",
                 ("layer", "op", "weights", "MACs", "zeros", "w bits", "a bits"), rows, (32, 10, 10, 13, 9, 6, 6),
                 frozenset(range(2, 7)), ruled=True)


def guidance(rec: Record) -> list[str]:
    """What the student may declare, what that and lower bits would score, and why a structured
    pruning claim may measure nothing (nothing without the measurements or the rules' references)."""
    refs = rec.provenance.rules
    if rec.measured is None or rec.params is None or rec.macs is None \
            or not {"reference_params", "reference_macs"} <= set(refs):
        return []
    rules = Reference.of(refs)
    best, at_best = advice(rec.params, rec.macs, rec.measured, rec.structured_mac_share, rules)
    lines = [f"the most you may declare: structured_pruning {best.structured_pruning:.4f}, unstructured_pruning "
             f"{best.unstructured_pruning:.4f}, weight_bits {best.weight_bits}, activation_bits "
             f"{best.activation_bits}: score {at_best.total:.4f}"]
    rounded = [k for k in ("weight_bits", "activation_bits")
               if getattr(best, k) == HALF_BITS and getattr(rec.measured, k) > HALF_BITS]
    if rounded:
        lines.append(f"({' and '.join(rounded)} {HALF_BITS}: the judge rounds to float16 itself when 16 is declared; "
                     "the accuracy may move by a few hundredths of a point)")
    rows = what_if(rec.params, rec.macs, rec.measured, rec.structured_mac_share, rules)
    if rows:
        lines.append("what if (hypothetical, NOT verified: the model would have to be quantised so): "
                     + ", ".join(f"{b} bits {total:.4f}" for b, total in rows))
    if rec.declared is not None and rec.declared.structured_pruning > 0 and rec.measured.structured_pruning == 0:
        lines.append("note: structured pruning counts output channels that are all zero and still in the model; "
                     "channels removed from the architecture are already absent from w and f, so they need no claim")
    return lines


_PROGRAM = {"exported": "exported by stage 1", "reused": "reused: exported by an earlier judgement of the same "
            "files, harness and environment (stage 1 did not run)"}


def _provenance(rec: Record, record_file: str | None) -> list[Section]:
    p = rec.provenance
    facts = [("harness", p.harness_version), ("scoring version", p.scoring_version),
             ("isolation", p.isolation or ""), *([("program", _PROGRAM[p.program])] if p.program else []),
             ("device", p.device or ""), ("torch", p.torch_version or ""),
             *((k, v) for k, v in sorted(p.packages.items()) if k != "torch"),
             ("test set sha256", p.dataset_sha256 or ""), ("submission sha256", p.submission_sha256 or "")]
    facts += [("record", record_file)] if record_file else []
    facts += [(f"rule {k}", _number(v)) for k, v in sorted(p.rules.items())]
    files = tuple(p.files.items())
    return [Facts("provenance", "Provenance", tuple(facts)),
            Table("files", "Files (sha256)", ("file", "sha256"), files, (32, 64))]


def _filled(s: Section) -> bool:
    return bool(s.items if isinstance(s, (Facts, Messages)) else s.rows)


def _number(v) -> str:
    """A value as the view shows it: fractions with 4 decimals, other numbers as they are, None blank."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}" if v <= 1 else f"{v:g}"
    return str(v)


# -- text -----------------------------------------------------------------------------------------------

def text(view: View, layers: bool = True) -> str:
    """The view as the terminal shows it (without the receipt unless `layers`)."""
    lines = [f"{view.team}/{view.name}  ({view.directory})  status: {view.status}"]
    for s in view.sections:
        if layers or s.key not in LATE:
            lines += _text(s)
    v = view.verdict
    if v.final:
        lines.append("  ELIGIBLE" if v.eligible else "  not eligible: " + v.why)
    return "\n".join(lines)


def _text(s: Section) -> list[str]:
    if isinstance(s, Facts):
        return [f"  {k}: {v}" if k else f"  {v}" for k, v in s.items]
    if isinstance(s, Messages):
        lead = f"  {s.label}: " if s.label else "  "
        return [lead + m.replace("\n", "\n" + " " * len(lead)) for m in s.items]
    head = _row(s, s.columns)
    return [head, *(["  " + "-" * (len(head) - 2)] if s.ruled else []), *(_row(s, r) for r in s.rows)]


def _row(t: Table, cells: Iterable[str]) -> str:
    out = []
    for i, (cell, width) in enumerate(zip(cells, t.widths, strict=True)):
        if i in t.numeric:
            out.append(cell.rjust(width))
        else:
            out.append((cell if len(cell) <= width else "…" + cell[-(width - 1):]).ljust(width))
    return ("  " + " ".join(out)).rstrip()


# -- HTML -----------------------------------------------------------------------------------------------

def html(view: View, when: str = "") -> str:
    """The view as the run page's body: title, verdict (with `when`, e.g. "Evaluated ..."), the sections
    (the receipt after the others), the provenance."""
    e = _html.escape
    v = view.verdict
    verdict = ('<span class="ok">ELIGIBLE</span>' if v.eligible
               else '<span class="no">not eligible</span>' + (f": {e(v.why)}" if v.why else ""))
    parts = [f"<h1>{e(view.team)} / {e(view.name)}</h1>",
             f"<p>{verdict}. {e(when) + ', s' if when else 'S'}tatus {e(view.status)}.</p>"]
    ordered = [s for s in view.sections if s.key not in LATE] + [s for s in view.sections if s.key in LATE]
    parts += [_html_section(s) for s in ordered + list(view.provenance)]
    return "\n".join(parts)


def _html_section(s: Section) -> str:
    head = f"<h2>{_html.escape(s.title)}</h2>"
    if isinstance(s, Messages):
        if s.verbatim:
            return head + "".join(f"<pre>{_html.escape(m)}</pre>" for m in s.items)
        return head + "<ul>" + "".join(f"<li>{_html.escape(m)}</li>" for m in s.items) + "</ul>"
    if isinstance(s, Facts):
        rows = [f"<tr><td>{_html.escape(k)}</td><td>{_html.escape(v)}</td></tr>" if k
                else f'<tr><td colspan="2">{_html.escape(v)}</td></tr>' for k, v in s.items]
        return f'{head}\n<table class="facts">\n' + "\n".join(rows) + "</table>"
    return head + "\n" + html_table(s.columns, s.rows, numeric=s.numeric)


def html_table(columns: Iterable[str], rows: Iterable[Iterable], *, numeric=(), raw=()) -> str:
    """A table; cells escaped unless their column is in `raw` (links made by the caller),
    right-aligned in `numeric`."""
    head = "<tr>" + "".join(f"<th>{_html.escape(c)}</th>" for c in columns) + "</tr>"
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            shown = str(cell) if i in raw else _html.escape(str(cell))
            cells.append(f'<td class="num">{shown}</td>' if i in numeric else f"<td>{shown}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}\n" + "\n".join(body) + "</table>"
