"""Table 2 of the paper, reproduced from the suite's W&B runs: Markdown, LaTeX and CSV, with provenance and tests.

    python -m controls.silent [--profile toy] [--select ...]    # first: the silent-audio control of each row
    python -m analysis.table2 [--wandb-dir outputs/wandb | --wandb ENTITY/PROJECT] [--profile toy]
                              [--select best-val|final|best-test] [--out reports/<profile>] [--allow-mixed-versions]
                              [--allow-mixed-decoding] [--allow-gaps] [--include-adhoc]

Writes ``<out>/table2/table2.md``, ``table2.tex`` (needs ``\\usepackage{booktabs}``) and ``table2.csv`` as one set and
prints the Markdown; ``<out>`` is ``reports/<profile>`` unless ``--out`` says otherwise. Exit status: 0 written; 2
some Table 2 experiment has no usable run (the message names them and the commands that produce them); 1 the W&B
runs disagree with their run directories on this machine (:mod:`analysis.crosscheck`; pass ``--allow-gaps`` to write
the table anyway with the problems in its notes), the measured rows are on different benchmark versions (pass
``--allow-mixed-versions`` to label each row instead), the selected evaluations were decoded in different compute
dtypes or with different decoding sources, or a silent-audio control was decoded unlike the evaluation it controls
(pass ``--allow-mixed-decoding`` to write the table anyway, with a warning and each row's decoding in the provenance)
or another error in the inputs.

How each selected evaluation was decoded is read from its test ``metrics.json`` in the run directory
(:func:`analysis.crosscheck.read_decoding`): the compute dtype (``dtype.compute``), the decoding source
(``decoding.source``: ``neutral`` greedy settings or the ``checkpoint``'s own generation config), the truncation rate
and the missing-answer rate. An evaluation written by an older version (no such keys), or whose run directory is not
this run's on this machine, is "unknown": a table whose rows are all unknown is written (it says so), but unknown
next to known values is a mix like any other, since one precision across the rows cannot be confirmed.

What is in the table:

- the leaderboard baselines the paper quotes (marked as quoted, on MMAU a5cd89a: never measured here);
- the five measured rows (direct, Full SFT + P1, LoRA SFT + P1, GRPO + P2, GRPO + P3), each cell "ours (paper,
  ours - paper)"; with several seeds "mean ± std"; always a 95% interval on the average (one seed: Wilson over
  the items of the saved predictions; several: a t interval over the seeds);
- for each measured row, "silent audio": the accuracy of the same selected checkpoints with every clip replaced by
  silence (written by :mod:`controls.silent`; mean ± std over seeds), and "listening gain": with audio minus
  silent, per seed, then mean ± std. A silent evaluation must be decoded like the real one (prompt, compute dtype,
  decoding source, token limit, benchmark: :func:`analysis.silent.differences`); a missing one is "n/a" with a note
  naming the command, never 0. The test set's chance level (mean over its items of 1 / number of choices, from the
  selected predictions) is stated with the table;
- provenance of every measured row: benchmark version, profile, selection rule, seeds, selected steps, run ids
  (ad hoc runs marked; only with ``--include-adhoc``), the selected evaluations' compute dtype, decoding source,
  truncation rate and missing-answer rate (means over seeds, with each seed's value), and whether each run's W&B
  evaluations were checked against its run directory;
- exact McNemar tests of GRPO + Prompt <2> against each SFT row on per-item correctness at the selected
  checkpoints (items paired by id, runs paired by seed, discordant counts pooled over seeds).

Which runs and checkpoints are used is decided in :mod:`analysis.select`. The output depends only on the runs and
the arguments (no dates, fixed ordering and float formatting), so rerunning on the same runs gives identical files.
The CSV holds one row per measured row with its run ids and steps, so every number traces back to a W&B run.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from analysis.crosscheck import (
    UNKNOWN,
    CrossCheck,
)
from analysis.fmt import TEX_PM, num, signed, spread, tex, tex_minus
from analysis.paper_numbers import (
    PAPER_BENCHMARK_VERSION,
    PAPER_ROWS,
    QUOTED_BASELINES,
    TABLE2_EXPERIMENTS,
    TASK_COLUMNS,
)
from analysis.runs import RunTables
from analysis.select import (
    SELECTION_RULES,
)
from analysis.silent import (
    DIFFERS,
)
from analysis.sources import out_dir, report_parser, run_report
from analysis.stats import mean_std
from analysis.table2_build import (
    VERSION_NAMES,
    MeasuredRow,
    MixedDecodingError,
    MixedVersionsError,
    Table2,
    build_table2,
)
from analysis.table2_more import (
    render_block_latex,
    render_block_markdown,
    render_blocks_csv,
)
from data.io import replace_file_set
from experiments.paths import output_root

# --------------------------------------------------------------------------------------------------------------
# Formatting (fixed precision everywhere: the files must be byte-identical across reruns)


_num, _signed = num, signed


def _p(p: float) -> str:
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def _ci(row: MeasuredRow) -> str:
    return "n/a" if row.ci is None else f"[{row.ci[0]:.2f}, {row.ci[1]:.2f}]"


def _value(row: MeasuredRow, task: str, pm: str = "±") -> str:
    std = row.std[task]
    return _num(row.mean[task]) + (f" {pm} {_num(std)}" if std is not None else "")


def _spread(values: list[float] | None, pm: str = "±", *, signed: bool = False) -> str:
    """Mean (± std over seeds when there are several) of per-seed values; "n/a" for None."""
    return spread(values, pm, with_sign=signed)


def _silent_cell(row: MeasuredRow, pm: str = "±") -> str:
    """Silent-audio accuracy of the selected checkpoints (mean ± std over seeds); flagged if decoded differently."""
    text = _spread(row.silent_values, pm)
    return text + (" (decoded differently)" if any(s.status == DIFFERS for s in row.silent) else "")


def _gain_cell(row: MeasuredRow, pm: str = "±") -> str:
    """Listening gain: with audio minus silent, per seed, then mean ± std over seeds."""
    return _spread(row.gains, pm, signed=True)


def _chance_words(table: Table2) -> str:
    chance = table.chance
    if len(chance) == 1:
        (value,) = chance.values()
        return f"{_num(value)}%" if value is not None else "n/a (no saved predictions readable here)"
    return "; ".join(f"{v}: {_num(c)}%" for v, c in sorted(chance.items()))


def _seeds(row: MeasuredRow) -> str:
    return ", ".join(str(c.seed) for c in row.checkpoints) + f" (n={len(row.checkpoints)})"


def _steps(row: MeasuredRow) -> str:
    if len(row.checkpoints) == 1:
        return str(row.checkpoints[0].step)
    return ", ".join(f"s{c.seed}: {c.step}" for c in row.checkpoints)


def _rules(row: MeasuredRow) -> str:
    return ", ".join(sorted({c.rule for c in row.checkpoints}))


def _run_ids(row: MeasuredRow) -> str:
    return ", ".join(c.run_id + (" (ad hoc)" if c.adhoc else "") for c in row.checkpoints)


def _checked(row: MeasuredRow, check: CrossCheck) -> str:
    if len(row.checkpoints) == 1:
        return check.status(row.checkpoints[0].run_id)
    return "; ".join(f"s{c.seed}: {check.status(c.run_id)}" for c in row.checkpoints)


def _per_seed(row: MeasuredRow, values: list[str]) -> str:
    """One value when every seed has it, else each seed's ("s0: float32; s1: bfloat16")."""
    if len(set(values)) == 1:
        return values[0]
    return "; ".join(f"s{c.seed}: {v}" for c, v in zip(row.checkpoints, values, strict=True))


def _dtype_cell(row: MeasuredRow) -> str:
    return _per_seed(row, [d.compute_dtype + (f" ({d.reason})" if d.reason else "") for d in row.decodings])


def _decoding_cell(row: MeasuredRow) -> str:
    return _per_seed(row, [d.source + (" (sampled)" if d.greedy is False else "") for d in row.decodings])


def _rates(row: MeasuredRow, attr: str) -> list[float | None]:
    return [getattr(d, attr) for d in row.decodings]


def _mean_rate(row: MeasuredRow, attr: str) -> float | None:
    values = [v for v in _rates(row, attr) if v is not None]
    return mean_std(values)[0] if values and len(values) == len(row.decodings) else None  # n/a if a seed lacks it


def _rate_cell(row: MeasuredRow, attr: str) -> str:
    """The rate of the selected evaluation; with several seeds their mean, then each seed's in brackets."""
    text = _num(_mean_rate(row, attr))
    if len(row.decodings) > 1:
        text += " (" + ", ".join(f"s{c.seed}: {_num(v)}" for c, v in zip(row.checkpoints, _rates(row, attr),
                                                                           strict=True)) + ")"  # fmt: skip
    return text


def _decoding_summary(table: Table2) -> str:
    """One sentence on how the measured rows were decoded (for the Markdown header and the LaTeX caption)."""
    dtypes, sources = table.compute_dtypes, table.decoding_sources
    if table.mixed_decoding:
        return (f"measured rows decoded differently: compute dtypes {', '.join(dtypes)}; decoding sources "
                f"{', '.join(sources)}")  # fmt: skip
    if dtypes == [UNKNOWN] and sources == [UNKNOWN]:
        return ("decoding of the measured rows unknown (evaluations written by an older version, or run directories "
                "not on this machine): one compute dtype across the rows cannot be confirmed")  # fmt: skip
    return f"every measured row decoded in compute dtype {dtypes[0]}, decoding {sources[0]}"


def _source(row: MeasuredRow) -> str:
    return row.version + (", ad hoc" if any(c.adhoc for c in row.checkpoints) else "")


def _top_warnings(table: Table2) -> list[str]:
    """What must be read before the numbers: ad hoc runs allowed, run directories that disagree with W&B."""
    out = []
    if table.include_adhoc:
        used = table.adhoc_checkpoints
        which = ("ad hoc runs used: " + "; ".join(f"{c.experiment} s{c.seed} (run {c.run_id}: "
                                                  f"{', '.join(c.adhoc_reasons)})" for c in used)
                 if used else "none of the runs used is ad hoc")  # fmt: skip
        out.append("**Ad hoc runs allowed** (`--include-adhoc`): runs whose settings differ from the registered "
                   f"experiments were candidates too, and a row using one is marked ad hoc; {which}.")  # fmt: skip
    if table.mixed_decoding:
        out.append("**Mixed decoding** (allowed with `--allow-mixed-decoding`): rows decoded in different precision "
                   "or with different generation settings are not comparable; each row's decoding is in the "
                   "provenance.")  # fmt: skip
    if table.silent_differs:
        out.append("**Silent-audio controls decoded unlike their real evaluations** (allowed with "
                   "`--allow-mixed-decoding`): such cells are marked and named in the notes; their listening gain "
                   "is not the audio's alone.")  # fmt: skip
    problems = table.check.problems
    if problems:
        out.append(f"**The W&B runs disagree with their run directories** ({len(problems)} problem"
                   f"{'' if len(problems) == 1 else 's'}, allowed with `--allow-gaps`): the numbers are W&B's; "
                   "the problems are listed in the notes.")  # fmt: skip
    return out


def _items(row: MeasuredRow) -> str:
    sizes = sorted({n for n in row.n_items if n is not None})
    return ", ".join(str(n) for n in sizes) if sizes else "n/a"


def _version_words(version: str) -> str:
    return f"{version} ({VERSION_NAMES[version]})" if version in VERSION_NAMES else version


def _row_by_experiment(table: Table2) -> dict[str, MeasuredRow]:
    return {row.experiment: row for row in table.rows}


def _comparability(table: Table2) -> str:
    versions = table.versions
    if versions == [PAPER_BENCHMARK_VERSION]:
        return (f"The measured rows and the paper's numbers are both on MMAU {PAPER_BENCHMARK_VERSION}; the "
                "differences compare like with like (up to the protocol differences in the suite's docs).")  # fmt: skip
    return (f"**Not comparable with the paper:** the measured rows are on benchmark {', '.join(versions)}, the "
            f"paper's numbers on MMAU {PAPER_BENCHMARK_VERSION}. The paper values and differences are shown for "
            "orientation only.")  # fmt: skip


SILENT_WORDS = ("Silent audio: the same selected checkpoint evaluated with every clip replaced by silence (same "
                "prompt, decoding and compute dtype; `python -m controls.silent`). Listening gain: accuracy with "
                "audio minus silent, per seed, then mean ± std over seeds. A score earned without listening has no "
                "gain; n/a: not evaluated (see the notes).")  # fmt: skip


def render_markdown(table: Table2) -> str:
    """The report as Markdown: the table, provenance of the measured rows, McNemar tests, and notes."""
    rows = _row_by_experiment(table)
    versions = ", ".join(_version_words(v) for v in table.versions)
    out = [
        f"# Table 2: MMAU test-mini accuracy (%), profile `{table.profile}`",
        "",
        f"- Measured rows: benchmark {versions}; profile `{table.profile}`; model `{table.model}`; checkpoint "
        f"selection `{table.rule}` "
        f"({SELECTION_RULES[table.rule]}); source: {table.source}.",
        "- Each measured cell: ours (the paper's value, ours - paper). With several seeds, ours is the mean ± the "
        "standard deviation over seeds.",
        "- 95% interval on the average: Wilson over the items for one seed; a t interval over the seeds for several.",
        f"- Quoted rows: MMAU leaderboard numbers quoted from the paper (benchmark {PAPER_BENCHMARK_VERSION}), not "
        "measured here.",
        f"- {_comparability(table)}",
        f"- Decoding (each selected evaluation's metrics.json): {_decoding_summary(table)}; per row, with the "
        "truncation and missing-answer rates, in the provenance.",
        f"- {SILENT_WORDS}",
        f"- Chance level of the test set (the mean over its items of 1 / the number of choices): "
        f"{_chance_words(table)}.",
        *(f"- {warning}" for warning in _top_warnings(table)),
        "",
        "| Method | Source | Sound | Music | Speech | Average | Average, 95% CI | Silent audio | Listening gain |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for base in QUOTED_BASELINES:
        label = base.label + (f" ({base.note})" if base.note else "")
        cells = " | ".join(_num(base.value(t)) for t in TASK_COLUMNS)
        out.append(f"| {label} | quoted from the paper, {base.benchmark_version} | {cells} | | | |")
    for row in table.rows:
        cells = " | ".join(
            f"{_value(row, t)} ({_num(row.paper.value(t))}, {_signed(row.diff(t))})" for t in TASK_COLUMNS
        )
        out.append(f"| {row.label} | measured, {_source(row)} | {cells} | {_ci(row)} ({row.ci_method}) | "
                   f"{_silent_cell(row)} | {_gain_cell(row)} |")  # fmt: skip
    for block in table.blocks:
        out += render_block_markdown(block)
    out += [
        "",
        "## Measured rows: provenance",
        "",
        "Checked against run dir: each run's W&B evaluations compared with its run directory's record "
        "(`checkpoint_evals.jsonl`; an older direct run: `metrics.json`), where that directory is on this machine.",
        "",
        "Compute dtype, decoding, truncated and no answer: from the selected evaluation's test `metrics.json` in the "
        "run directory. Decoding `neutral`: greedy with neutral settings; `checkpoint`: the checkpoint's own "
        "generation config. Unknown: written by an older version, or not on this machine. Truncated: % of test "
        "outputs that hit the token limit; no answer: % without a complete `<answer>...</answer>` (Prompt <1> rows "
        "answer without tags, so they read 100 by design; n/a: not recorded); with several seeds the mean, then "
        "each seed's value.",
        "",
        "| Method | Experiment | Benchmark | Profile | Selection | Seeds | Selected step(s) | Run id(s) | Items | "
        "Compute dtype | Decoding | Truncated (%) | No answer (%) | Checked against run dir |",
        "|---|---|---|---|---|---|---|---|---:|---|---|---:|---:|---|",
    ]
    for row in table.rows:
        out.append(f"| {row.label} | {row.experiment} | {row.version} | {table.profile} | {_rules(row)} | "
                   f"{_seeds(row)} | {_steps(row)} | {_run_ids(row)} | {_items(row)} | {_dtype_cell(row)} | "
                   f"{_decoding_cell(row)} | {_rate_cell(row, 'truncation_rate')} | "
                   f"{_rate_cell(row, 'missing_answer_rate')} | {_checked(row, table.check)} |")  # fmt: skip
    out += [
        "",
        "## McNemar tests: GRPO + Prompt <2> against each SFT row",
        "",
        "Per-item correctness at the selected checkpoints, items paired by id and runs by seed (counts pooled over "
        "seeds). b: GRPO right and SFT wrong; c: GRPO wrong and SFT right; p: exact two-sided binomial test on b "
        "and c.",
        "",
        "| Comparison | Seeds | Items paired | Both right | b | c | Both wrong | p |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for test in table.mcnemar:
        name = f"{rows[test.a].label} vs {rows[test.b].label}"
        seeds = ", ".join(map(str, test.seeds)) or "none"
        if test.counts is None:
            out.append(f"| {name} | {seeds} | not tested: {test.problem} | | | | | |")
            continue
        k = test.counts
        out.append(f"| {name} | {seeds} | {k.n_paired} | {k.both_right} | {k.b} | {k.c} | {k.both_wrong} | "
                   f"{_p(k.p_value)} |")  # fmt: skip
    out += ["", "## Notes", ""]
    for note in _standard_notes(table) + table.notes:
        out.append(f"- {note}")
    return "\n".join(out) + "\n"


def _standard_notes(table: Table2) -> list[str]:
    notes = [f"{PAPER_ROWS['direct'].label}: {PAPER_ROWS['direct'].note}."]
    if table.rule == "best-test":
        notes.append("Checkpoints were selected on the test set itself (as in the paper): the trained rows are "
                     "optimistic; `--select best-val` selects on the validation split instead.")  # fmt: skip
    if any(len(r.checkpoints) > 1 for r in table.rows):
        notes.append("Rows with several seeds: with few seeds the t interval is wide (t = 12.71 for 2 seeds).")
    if any(len(t.seeds) > 1 for t in table.mcnemar):
        notes.append("McNemar with several seeds pools the discordant pairs of each seed's run pair; this treats "
                     "the same item in different seeds as independent, which overstates the evidence somewhat.")  # fmt: skip
    if table.mixed_versions:
        notes.append("**Mixed benchmark versions** (allowed with --allow-mixed-versions): each measured row names "
                     "its version in the Source column; do not compare rows on different versions.")  # fmt: skip
    return notes


_TEX_PM = TEX_PM
_tex, _tex_minus = tex, tex_minus


def _tex_signed(x: float | None) -> str:
    return _tex_minus(_signed(x))


def render_latex(table: Table2) -> str:
    """The table (and the McNemar tests) as LaTeX ``table`` floats using booktabs."""
    rows = _row_by_experiment(table)
    caption = (f"MMAU test-mini accuracy (\\%), profile \\texttt{{{_tex(table.profile)}}}, measured rows on benchmark "
               f"{_tex(', '.join(table.versions))}, checkpoint selection \\texttt{{{_tex(table.rule)}}}. "
               "Measured cells: ours (paper, ours $-$ paper); with several seeds mean $\\pm$ std. "
               f"Quoted rows: leaderboard numbers quoted from the paper (MMAU {PAPER_BENCHMARK_VERSION}).")  # fmt: skip
    caption += f" Decoding: {_tex(_decoding_summary(table))}."
    caption += (" Silent: the selected checkpoint with every clip replaced by silence (same prompt and decoding); "
                "Gain: with audio $-$ silent, per seed, then mean $\\pm$ std; n/a: not evaluated. Chance level of the "
                f"test set (mean of 1/number of choices): {_tex(_chance_words(table))}.")  # fmt: skip
    if table.silent_differs:
        caption += (" Some silent controls were decoded unlike their real evaluations "
                    "(\\texttt{-{}-allow-mixed-decoding}; see the notes of the Markdown report).")  # fmt: skip
    if table.mixed_decoding:
        caption += (" Rows decoded differently (\\texttt{-{}-allow-mixed-decoding}; see the provenance of the Markdown "
                    "report).")  # fmt: skip
    if table.include_adhoc:
        caption += " Ad hoc runs allowed (\\texttt{-{}-include-adhoc}); rows using one are marked ad hoc."
    if table.check.problems:
        caption += (" The W&B runs disagree with their run directories (\\texttt{-{}-allow-gaps}; see the notes of "
                    "the Markdown report).")  # fmt: skip
    out = [
        "% Generated by python -m analysis.table2; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{caption}}}",
        "\\label{tab:table2}",
        "\\begin{tabular}{llrrrrlrr}",
        "\\toprule",
        "Method & Source & Sound & Music & Speech & Average & Average, 95\\% CI & Silent & Gain \\\\",
        "\\midrule",
        f"\\multicolumn{{9}}{{l}}{{\\textit{{Quoted from the paper (MMAU {PAPER_BENCHMARK_VERSION})}}}} \\\\",
    ]
    for base in QUOTED_BASELINES:
        cells = " & ".join(_num(base.value(t)) for t in TASK_COLUMNS)
        out.append(f"{_tex(base.label)} & quoted & {cells} & & & \\\\")
    out += ["\\midrule", f"\\multicolumn{{9}}{{l}}{{\\textit{{Measured (profile {_tex(table.profile)})}}}} \\\\"]
    for row in table.rows:
        cells = " & ".join(
            f"{_value(row, t, _TEX_PM)} {{\\scriptsize ({_num(row.paper.value(t))}, {_tex_signed(row.diff(t))})}}"
            for t in TASK_COLUMNS
        )
        out.append(f"{_tex(row.label)} & {_tex(_source(row))} & {cells} & {_ci(row)} {{\\scriptsize "
                   f"({_tex(row.ci_method)})}} & {_silent_cell(row, _TEX_PM)} & "
                   f"{_tex_minus(_gain_cell(row, _TEX_PM))} \\\\")  # fmt: skip
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    for block in table.blocks:
        out += render_block_latex(block)
    out += [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        "\\caption{Exact McNemar tests on per-item correctness at the selected checkpoints (items paired by id, runs "
        "by seed). $b$: GRPO right, SFT wrong; $c$: GRPO wrong, SFT right.}",
        "\\label{tab:table2-mcnemar}",
        "\\begin{tabular}{llrrrr}",
        "\\toprule",
        "Comparison & Seeds & Items & $b$ & $c$ & $p$ \\\\",
        "\\midrule",
    ]
    for test in table.mcnemar:
        name = _tex(f"{rows[test.a].label} vs {rows[test.b].label}")
        seeds = ", ".join(map(str, test.seeds)) or "none"
        if test.counts is None:
            out.append(f"{name} & {seeds} & \\multicolumn{{4}}{{l}}{{not tested: {_tex(test.problem)}}} \\\\")
        else:
            k = test.counts
            out.append(f"{name} & {seeds} & {k.n_paired} & {k.b} & {k.c} & {_tex(_p(k.p_value))} \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


CSV_COLUMNS: tuple[str, ...] = (
    "row", "experiment", "benchmark_version", "profile", "selection", "n_seeds", "seeds", "run_ids", "steps",
    *TASK_COLUMNS, *(f"{t}_std" for t in TASK_COLUMNS), "avg_ci95_low", "avg_ci95_high", "ci_method", "n_items",
    *(f"paper_{t}" for t in TASK_COLUMNS), *(f"diff_{t}" for t in TASK_COLUMNS), "paper_benchmark_version",
    "adhoc", "run_dir_checked", "compute_dtype", "decoding_source", "truncation_rate", "missing_answer_rate",
    "truncation_rate_per_seed", "missing_answer_rate_per_seed", "silent_avg", "silent_avg_std", "listening_gain",
    "listening_gain_std", "silent_avg_per_seed", "silent_status", "chance",
)  # fmt: skip


def render_csv(table: Table2) -> str:
    """One line per measured row; seeds, run ids, steps, ad hoc flags (yes/no), run dir checks, compute dtypes,
    decoding sources, the per-seed rates, silent accuracies and silent statuses (ok, missing, not here, differs) are
    ";"-separated in the same (seed) order; the rates without "per seed" are the means over seeds (empty: not
    recorded); silent and gain are empty unless every seed has a silent evaluation."""

    def num(x: float | None) -> str:
        return "" if x is None else _num(x)

    def spread(values: list[float] | None, signed: bool = False) -> list[str]:
        mean, std = mean_std(values) if values is not None else (None, None)
        return [("" if mean is None else _signed(mean)) if signed else num(mean), num(std)]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in table.rows:
        writer.writerow([
            row.label, row.experiment, row.version, table.profile, _rules(row), len(row.checkpoints),
            ";".join(str(c.seed) for c in row.checkpoints), ";".join(c.run_id for c in row.checkpoints),
            ";".join(str(c.step) for c in row.checkpoints),
            *(num(row.mean[t]) for t in TASK_COLUMNS), *(num(row.std[t]) for t in TASK_COLUMNS),
            num(row.ci[0] if row.ci else None), num(row.ci[1] if row.ci else None), row.ci_method,
            ";".join("" if n is None else str(n) for n in row.n_items),
            *(num(row.paper.value(t)) for t in TASK_COLUMNS),
            *("" if row.diff(t) is None else _signed(row.diff(t)) for t in TASK_COLUMNS), PAPER_BENCHMARK_VERSION,
            ";".join("yes" if c.adhoc else "no" for c in row.checkpoints),
            ";".join(table.check.status(c.run_id) for c in row.checkpoints),
            ";".join(d.compute_dtype for d in row.decodings), ";".join(d.source for d in row.decodings),
            num(_mean_rate(row, "truncation_rate")), num(_mean_rate(row, "missing_answer_rate")),
            ";".join(num(v) for v in _rates(row, "truncation_rate")),
            ";".join(num(v) for v in _rates(row, "missing_answer_rate")),
            *spread(row.silent_values), *spread(row.gains, signed=True), ";".join(num(s.avg) for s in row.silent),
            ";".join(s.status for s in row.silent), num(row.chance),
        ])  # fmt: skip
    return buffer.getvalue()


TABLE2_SET = "table2"  # the folder under the report directory that holds the table's three files
BLOCKS_CSV = "table2-more-benchmarks.csv"  # beside them, when the runs were judged on more than MMAU test-mini


def write_table2(table: Table2, out_dir: str | Path) -> dict[str, Path]:
    """Write ``table2/table2.{md,tex,csv}`` under ``out_dir`` as one set (``data.io.replace_file_set``: a kill at any
    moment leaves the old three files or the new three, never a mix); returns the paths by extension."""
    out_dir = Path(out_dir)
    renders = {"md": render_markdown, "tex": render_latex, "csv": render_csv}
    files = {f"table2.{ext}": r(table).encode() for ext, r in renders.items()}
    if table.blocks:  # the further benchmarks, one line per (block, row, column)
        files[BLOCKS_CSV] = render_blocks_csv(table.blocks).encode()
    written = replace_file_set(out_dir / TABLE2_SET, files)
    for ext in renders:  # versions before the set wrote the three files beside it: never leave those to be misread
        (out_dir / f"table2.{ext}").unlink(missing_ok=True)
    return {ext: written[f"table2.{ext}"] for ext in renders}


# --------------------------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = report_parser("python -m analysis.table2", __doc__,
                           select_help="checkpoint of each run: best-val (default), final, or best-test (the paper's "
                           "choice)")  # fmt: skip
    parser.add_argument("--allow-mixed-versions", action="store_true",
                        help="allow measured rows on different benchmark versions (each row is labelled)")  # fmt: skip
    parser.add_argument("--allow-mixed-decoding", action="store_true",
                        help="allow selected evaluations decoded in different compute dtypes or with different "
                        "decoding sources, unknown included (older evaluations, run dirs not here); the report warns "
                        "and lists each row's decoding")  # fmt: skip
    args = parser.parse_args(argv)

    def write(tables: RunTables, source: str) -> int:
        table = build_table2(tables, args.profile, args.select, allow_mixed_versions=args.allow_mixed_versions,
                             allow_mixed_decoding=args.allow_mixed_decoding, allow_gaps=args.allow_gaps,
                             include_adhoc=args.include_adhoc, source=source, run_dirs=output_root(),
                             model=args.model)  # fmt: skip
        paths = write_table2(table, out_dir(args))
        for problem in table.check.problems:
            print(f"warning (--allow-gaps): {problem.message()}", file=sys.stderr)
        print(paths["md"].read_text(encoding="utf-8"), end="")
        print(f"written: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
        return 0

    return run_report(args, TABLE2_EXPERIMENTS, write, errors=(MixedVersionsError, MixedDecodingError))


if __name__ == "__main__":
    sys.exit(main())
