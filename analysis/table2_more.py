"""Table 2's blocks for the benchmarks beside MMAU test-mini: MMAR on the paper profile, the toy's mixed test on toy.

    from analysis.table2 import build_table2; table = build_table2(tables, "toy"); table.blocks[0].rows

Each block has one row per measured Table 2 row, at the *same* selected checkpoints as the MMAU table (selection
stays on validation: a second benchmark never picks a checkpoint). Its cells are the accuracies the runs logged
for that set at that step (``eval/<set>/<column>``, mean ± std over seeds): one column per value of the benchmark's
breakdown (MMAR: modality) that has items, and the average; then the silent-audio control of the same checkpoint on
the same set (:func:`analysis.silent.read_silent`) and the listening gain. A row with a seed that never evaluated the
set (a run from before the set existed, or without its data) shows n/a there, and a note says which.

Quoted rows (:data:`analysis.paper_numbers.QUOTED_BY_SET`, e.g. MMAR's leaderboard) are shown only when the measured
rows are on a registered version of that benchmark, labelled with the version they were scored on; the toy's test
in MMAR's shape gets none (its numbers are no MMAR numbers).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.fmt import TEX_PM, num, spread, tex, tex_minus
from analysis.paper_numbers import QUOTED_BY_SET, QuotedScore
from analysis.select import read_metrics
from analysis.silent import DIFFERS, SilentEval, chance_level, listening_gains, read_silent, silent_values
from analysis.stats import mean_std
from data.benchmark_registry import benchmark_of_set
from data.run_files import METRICS_FILE, PREDICTIONS_FILE


@dataclass
class BlockRow:
    """One measured row of a block: the row's checkpoints' values on the block's set."""

    label: str
    experiment: str
    seeds: list[int]
    values: dict[str, list[float | None]]  # column -> per seed (None: not logged for that seed)
    silent: list[SilentEval]
    versions: list[str]

    def cell(self, column: str) -> str:
        per_seed = self.values.get(column, [])
        if not per_seed or None in per_seed:
            return "n/a"
        return spread([float(v) for v in per_seed if v is not None])

    @property
    def silent_values(self) -> list[float] | None:
        return silent_values(self.silent)

    @property
    def gains(self) -> list[float] | None:
        return listening_gains(self.values.get("avg", []), self.silent)


@dataclass
class Block:
    """The table of one further benchmark (evaluation set ``set_name``)."""

    set_name: str
    title: str
    columns: list[str]  # breakdown values with items, then "avg"
    rows: list[BlockRow]
    quoted: tuple[QuotedScore, ...] = ()
    notes: list[str] = field(default_factory=list)
    chance: float | None = None  # mean over its items of 1 / number of choices (%), from the saved predictions

    @property
    def versions(self) -> list[str]:
        return sorted({v for row in self.rows for v in row.versions})


def block_sets(rows: Sequence[Any]) -> list[str]:
    """The further evaluation sets any selected checkpoint of the measured rows was judged on, in first-seen order."""
    found: dict[str, None] = {}
    for row in rows:
        for c in row.checkpoints:
            found.update(dict.fromkeys(c.others))
    return list(found)


def _file(checkpoint: Any, set_name: str, name: str) -> Path | None:
    where = checkpoint.set_dir(set_name)
    return where / name if where is not None else None


def _version(checkpoint: Any, set_name: str) -> str:
    path = _file(checkpoint, set_name, METRICS_FILE)
    metrics = read_metrics(path) if path is not None else "no run dir"
    bench = metrics.get("benchmark") if isinstance(metrics, dict) else None
    return str(bench.get("version")) if isinstance(bench, dict) and bench.get("version") else "unknown"


def build_block(rows: Sequence[Any], check: Any, set_name: str) -> Block:
    """The block of ``set_name`` over the measured rows (each with ``label``, ``experiment``, ``checkpoints``)."""
    spec = benchmark_of_set(set_name)
    block_rows, notes = [], []
    present: set[str] = set()
    for row in rows:
        values: dict[str, list[float | None]] = {}
        for c in row.checkpoints:
            logged = c.others.get(set_name, {})
            present.update(k for k, v in logged.items() if v is not None)
            if not logged:
                notes.append(f"{row.label}, seed {c.seed} (run {c.run_id}): no {spec.title} evaluation at step "
                             f"{c.step} (a run from before eval.benchmarks, or without its data): n/a")  # fmt: skip
        for column in [*spec.columns.order, "avg", *sorted(present - {*spec.columns.order, "avg"})]:
            values[column] = [c.others.get(set_name, {}).get(column) for c in row.checkpoints]
        silent = [read_silent(check, c, set_name) for c in row.checkpoints]
        versions = sorted({_version(c, set_name) for c in row.checkpoints if c.others.get(set_name)})
        block_rows.append(BlockRow(row.label, row.experiment, [c.seed for c in row.checkpoints], values, silent,
                                   versions))  # fmt: skip
    ordered = [v for v in spec.columns.order if v in present] + sorted(present - {*spec.columns.order, "avg"})
    block = Block(set_name, spec.title, [*ordered, "avg"], block_rows, notes=notes)
    registered = set(spec.file_versions.values())
    if block.versions and set(block.versions) <= registered:
        block.quoted = QUOTED_BY_SET.get(set_name, ())
    else:
        block.title = f"Test in {spec.title}'s shape ({', '.join(block.versions) or 'version unknown'})"
    block.chance = next((v for row in rows for c in row.checkpoints
                         if (v := chance_level(_file(c, set_name, PREDICTIONS_FILE))) is not None), None)  # fmt: skip
    return block


def _silent_cell(row: BlockRow) -> str:
    text = spread(row.silent_values)
    return text + (" (decoded differently)" if any(s.status == DIFFERS for s in row.silent) else "")


def render_block_markdown(block: Block) -> list[str]:
    """The block as Markdown lines (a section of table2.md)."""
    versions = ", ".join(block.versions) or "unknown"
    out = [
        "",
        f"## {block.title}: accuracy (%) at the same selected checkpoints",
        "",
        f"- Benchmark version of the measured rows: {versions}. Columns: its {benchmark_of_set(block.set_name).columns.record_field} "
        "values with items, then the micro average; mean ± std over seeds. Silent audio and listening gain as above, "
        f"on this set (`eval/{block.set_name}-silent/`). Chance level (mean 1 / number of choices): "
        f"{num(block.chance)}{'%' if block.chance is not None else ''}.",
    ]
    if block.quoted:
        out.append(
            "- Quoted rows: averages from the leaderboard named, on the file version named; never measured here."
        )
    head = " | ".join(c if c != "avg" else "Average" for c in block.columns)
    out += ["", f"| Method | Source | {head} | Silent audio | Listening gain |",
            "|---|---|" + "---:|" * (len(block.columns) + 2)]  # fmt: skip
    for q in block.quoted:
        blanks = " | ".join("" for _ in block.columns[:-1])
        label = q.label + (f" ({q.note})" if q.note else "")
        out.append(f"| {label} | quoted, {q.source}, {q.benchmark_version} | {blanks}{' | ' if blanks else ''}"
                   f"{num(q.avg)} | | |")  # fmt: skip
    for row in block.rows:
        cells = " | ".join(row.cell(c) for c in block.columns)
        source = f"measured, {', '.join(row.versions) or 'n/a'}, seeds {', '.join(map(str, row.seeds))}"
        out.append(f"| {row.label} | {source} | {cells} | {_silent_cell(row)} | {spread(row.gains, with_sign=True)} |")
    if block.notes:
        out += ["", *[f"- {note}" for note in block.notes]]
    return out


def render_block_latex(block: Block) -> list[str]:
    """The block as a LaTeX ``table`` float (booktabs), as table2.tex renders the MMAU table."""
    columns = [c if c != "avg" else "Average" for c in block.columns]
    caption = (f"{tex(block.title)}: accuracy (\\%) at the same selected checkpoints as the MMAU table, benchmark "
               f"{tex(', '.join(block.versions) or 'unknown')}; mean $\\pm$ std over seeds. Silent and gain as there. "
               f"Chance level: {tex(num(block.chance))}\\%."
               + (" Quoted rows: leaderboard averages on the file version named, never measured here."
                  if block.quoted else ""))  # fmt: skip
    out = ["\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{caption}}}",
           f"\\label{{tab:table2-{block.set_name}}}", "\\begin{tabular}{ll" + "r" * (len(columns) + 2) + "}",
           "\\toprule", "Method & Source & " + " & ".join(tex(c) for c in columns) + " & Silent & Gain \\\\",
           "\\midrule"]  # fmt: skip
    for q in block.quoted:
        blanks = " & " * (len(columns) - 1)
        out.append(f"{tex(q.label)} & quoted, {tex(q.benchmark_version)} & {blanks}{num(q.avg)} & & \\\\")
    for row in block.rows:
        cells = " & ".join(row.cell(c).replace("±", TEX_PM) for c in block.columns)
        silent = spread(row.silent_values, TEX_PM)
        gain = tex_minus(spread(row.gains, TEX_PM, with_sign=True))
        out.append(f"{tex(row.label)} & measured & {cells} & {silent} & {gain} \\\\")
    return [*out, "\\bottomrule", "\\end{tabular}", "\\end{table}", ""]


def render_blocks_csv(blocks: Sequence[Block]) -> str:
    """One line per block and measured row: the set, the row, its seeds, and per column the mean and std."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["set", "benchmark", "versions", "method", "experiment", "seeds", "column", "mean", "std",
                     "per_seed"])  # fmt: skip
    for block in blocks:
        for row in block.rows:
            extra = {"silent": row.silent_values, "listening_gain": row.gains}
            series = {c: row.values.get(c, []) for c in block.columns} | extra
            for column, per_seed in series.items():
                known = per_seed is not None and len(per_seed) > 0 and None not in per_seed
                mean, std = mean_std([float(v) for v in per_seed if v is not None]) if known else (None, None)
                writer.writerow([block.set_name, block.title, ";".join(block.versions), row.label, row.experiment,
                                 ";".join(map(str, row.seeds)), column, "" if mean is None else num(mean),
                                 "" if std is None else num(std),
                                 ";".join("" if v is None else num(v) for v in (per_seed or []))])  # fmt: skip
    return buffer.getvalue()
