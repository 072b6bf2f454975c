"""Table 2's content, built from the runs: the selected checkpoints' scores, seeds, intervals, silent-audio
controls, McNemar tests and provenance (:class:`Table2`), and the errors that stop it (mixed benchmark versions or
decodings). :mod:`analysis.table2` renders it (Markdown, LaTeX, CSV) and is the command line; what the table holds
and why is described there.

    from analysis.table2_build import build_table2; table = build_table2(tables, "toy")
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from analysis.crosscheck import (
    NOT_ON_THIS_MACHINE,
    UNKNOWN,
    CrossCheck,
    Decoding,
    GapsError,
    check_runs,
    read_decoding,
)
from analysis.fmt import round2
from analysis.paper_numbers import (
    MCNEMAR_PAIRS,
    PAPER_BASE_MODEL,
    PAPER_ROWS,
    TABLE2_EXPERIMENTS,
    TASK_COLUMNS,
    PaperRow,
)
from analysis.runs import RunTables
from analysis.select import (
    DEFAULT_RULE,
    MissingRunsError,
    SelectedCheckpoint,
    Selection,
    missing_message,
    model_flag,
)
from analysis.select import select_checkpoints as _select
from analysis.silent import (
    DIFFERS,
    MISSING,
    NOT_HERE,
    SilentEval,
    chance_level,
    listening_gains,
    read_silent,
    silent_command,
    silent_values,
)
from analysis.stats import PairedCounts, load_correctness, mean_std, paired_counts, t_interval, wilson_interval
from analysis.table2_more import (
    Block,
    block_sets,
    build_block,
)
from data.schema import DataError
from experiments.profiles import model_slug

# Known MMAU versions, to say in words what a label means.
VERSION_NAMES = {
    "a5cd89a": "original MMAU test-mini, as in the paper",
    "1f675a9": "MMAU test-mini, one answer fixed after a5cd89a",
    "f0a4a97": "revised MMAU test-mini (v05.15.25): not comparable with the paper",
}


class MixedVersionsError(Exception):
    """The measured rows were evaluated on different benchmark versions."""


class MixedDecodingError(Exception):
    """The selected evaluations were decoded in different compute dtypes or with different decoding sources."""


@dataclass
class MeasuredRow:
    """One measured row: its runs' selected checkpoints and what the table shows of them."""

    experiment: str
    paper: PaperRow
    checkpoints: list[SelectedCheckpoint]
    mean: dict[str, float | None]
    std: dict[str, float | None]
    ci: tuple[float, float] | None
    ci_method: str
    n_items: list[int | None]  # per seed, from the saved predictions (None: not readable here)
    decodings: list[Decoding] = field(default_factory=list)  # per seed, from the selected evaluations' metrics.json
    silent: list[SilentEval] = field(default_factory=list)  # per seed: the selected checkpoint with silent audio
    chance: float | None = None  # the test set's chance accuracy (%), from the selected predictions
    model_label: str | None = None  # another model than the profile's own (--model): part of the row's label

    @property
    def label(self) -> str:
        if self.model_label is None:
            return self.paper.label
        # The paper's direct row names its base model ("Qwen2-Audio-7B-Instruct, direct inference"): on another
        # model that name would mislabel the row, so it gives way to the model's own in brackets.
        method = self.paper.label.removeprefix(f"{PAPER_BASE_MODEL}, ")
        return f"{method} [{self.model_label}]"

    @property
    def silent_values(self) -> list[float] | None:
        """Each seed's silent-audio accuracy (%), or None unless every seed has one (a partial mean would mislead)."""
        return silent_values(self.silent)

    @property
    def gains(self) -> list[float] | None:
        """Listening gain per seed: the selected checkpoint's test accuracy with audio minus with silence."""
        return listening_gains([c.test["avg"] for c in self.checkpoints], self.silent)

    @property
    def versions(self) -> list[str]:
        return sorted({c.benchmark_version for c in self.checkpoints})

    @property
    def version(self) -> str:
        return "+".join(self.versions)

    def diff(self, task: str) -> float | None:
        """Ours - paper, from our value as displayed (2 decimals), so the printed numbers add up."""
        value = self.mean[task]
        return None if value is None else round2(value) - self.paper.value(task)


@dataclass
class McNemarRow:
    a: str
    b: str
    seeds: list[int]
    counts: PairedCounts | None
    problem: str = ""


@dataclass
class Table2:
    profile: str
    rule: str
    source: str
    rows: list[MeasuredRow]
    mcnemar: list[McNemarRow]
    notes: list[str] = field(default_factory=list)
    mixed_versions: bool = False
    mixed_decoding: bool = False  # allowed with --allow-mixed-decoding
    check: CrossCheck = field(default_factory=CrossCheck)  # the runs checked against their run directories
    include_adhoc: bool = False
    silent_differs: bool = False  # a silent control decoded unlike its real evaluation (--allow-mixed-decoding)
    model: str | None = None  # the model of every measured row
    blocks: list[Block] = field(default_factory=list)  # the further benchmarks (MMAR; the toy's mixed test)

    @property
    def chance(self) -> dict[str, float | None]:
        """The chance accuracy (%) of each benchmark version of the measured rows (None: no predictions read)."""
        out: dict[str, float | None] = {}
        for row in self.rows:
            if out.get(row.version) is None:
                out[row.version] = row.chance
        return out

    @property
    def versions(self) -> list[str]:
        return sorted({v for row in self.rows for v in row.versions})

    @property
    def adhoc_checkpoints(self) -> list[SelectedCheckpoint]:
        return [c for row in self.rows for c in row.checkpoints if c.adhoc]

    @property
    def compute_dtypes(self) -> list[str]:
        return sorted({d.compute_dtype for row in self.rows for d in row.decodings})

    @property
    def decoding_sources(self) -> list[str]:
        return sorted({d.source for row in self.rows for d in row.decodings})


# --------------------------------------------------------------------------------------------------------------
# Building


def _correctness(
    checkpoint: SelectedCheckpoint, cache: dict[Path, dict[str, bool] | str], notes: list[str]
) -> dict[str, bool] | None:
    """Per-item correctness of a selected checkpoint's saved test predictions, or None (with a note) if unreadable."""
    path = checkpoint.predictions
    if path is None:
        return None
    if path not in cache:
        try:
            cache[path] = load_correctness(path)
        except DataError as exc:
            cache[path] = str(exc)
            notes.append(f"{checkpoint.experiment} seed {checkpoint.seed} (run {checkpoint.run_id}): predictions of "
                         f"step {checkpoint.step} not read ({exc}); no per-item statistics for it")  # fmt: skip
    found = cache[path]
    return found if isinstance(found, dict) else None


def _measured_row(
    experiment: str, checkpoints: list[SelectedCheckpoint], cache: dict[Path, dict[str, bool] | str], notes: list[str],
    decodings: list[Decoding],
) -> MeasuredRow:  # fmt: skip
    mean: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for task in TASK_COLUMNS:
        values = [c.test[task] for c in checkpoints]
        if any(v is None for v in values):
            mean[task] = std[task] = None
            continue
        mean[task], std[task] = mean_std([float(v) for v in values if v is not None])
    n_items: list[int | None] = []
    for c in checkpoints:
        correct = _correctness(c, cache, notes)
        n_items.append(len(correct) if correct is not None else None)
        if not correct or c.test["avg"] is None:
            continue
        # The logged value is rounded to 2 decimals; anything beyond that means the files and the run disagree.
        recomputed = 100.0 * sum(correct.values()) / len(correct)
        if abs(recomputed - c.test["avg"]) > 0.006:
            notes.append(f"{experiment} seed {c.seed} (run {c.run_id}): logged average {c.test['avg']:.2f} at step "
                         f"{c.step} differs from its saved predictions ({recomputed:.2f}); the table shows the "
                         "logged value")  # fmt: skip
    ci: tuple[float, float] | None = None
    if len(checkpoints) > 1:
        avgs = [c.test["avg"] for c in checkpoints]
        clipped = False
        if all(v is not None for v in avgs):
            low, high = t_interval([float(v) for v in avgs if v is not None])
            # An accuracy cannot leave [0, 100]; with few seeds the t interval can, and then says so.
            clipped = low < 0.0 or high > 100.0
            ci = (max(0.0, low), min(100.0, high))
        method = f"t over {len(checkpoints)} seeds" + (", clipped to [0, 100]" if clipped else "")
    else:
        correct = _correctness(checkpoints[0], cache, notes)
        if correct:
            ci = wilson_interval(sum(correct.values()), len(correct))
        method = f"Wilson, n={len(correct)} items" if correct else "n/a (no predictions)"
    return MeasuredRow(experiment, PAPER_ROWS[experiment], checkpoints, mean, std, ci, method, n_items, decodings)


def _mcnemar(
    a: str, b: str, selection: Selection, cache: dict[Path, dict[str, bool] | str], notes: list[str]
) -> McNemarRow:
    runs_a = {c.seed: c for c in selection.chosen[a]}
    runs_b = {c.seed: c for c in selection.chosen[b]}
    seeds = sorted(runs_a.keys() & runs_b.keys())
    if not seeds:
        return McNemarRow(a, b, [], None, "no seed run by both")
    total: PairedCounts | None = None
    for seed in seeds:
        correct_a, correct_b = _correctness(runs_a[seed], cache, notes), _correctness(runs_b[seed], cache, notes)
        if correct_a is None or correct_b is None:
            return McNemarRow(a, b, seeds, None, f"predictions of seed {seed} not readable")
        counts = paired_counts(correct_a, correct_b)
        if counts.only_a or counts.only_b:
            notes.append(f"McNemar {a} vs {b}, seed {seed}: {counts.only_a} + {counts.only_b} items in only one of "
                         "the two prediction files were left out")  # fmt: skip
        total = counts if total is None else total + counts
    return McNemarRow(a, b, seeds, total)


def build_table2(
    tables: RunTables,
    profile: str = "toy",
    rule: str = DEFAULT_RULE,
    *,
    allow_mixed_versions: bool = False,
    allow_mixed_decoding: bool = False,
    allow_gaps: bool = False,
    include_adhoc: bool = False,
    source: str = "offline W&B runs",
    run_dirs: Path | None = None,
    model: str | None = None,
) -> Table2:
    """Select the runs and checkpoints, check the runs against their run directories, compute every number.

    Raises:
        GapsError: a selected run's W&B evaluations disagree with its run directory (unless ``allow_gaps``).
        MissingRunsError: a Table 2 experiment has no finished, non-ad-hoc run of ``profile`` (with
            ``include_adhoc``: no finished run).
        MixedVersionsError: the selected runs are on different benchmark versions (unless allowed).
        MixedDecodingError: the selected evaluations were decoded in different compute dtypes or with different
            decoding sources, unknown counting as one more value (unless ``allow_mixed_decoding``).
    """
    selection = _select(tables, profile, rule, TABLE2_EXPERIMENTS, include_adhoc=include_adhoc, run_dirs=run_dirs,
                        model=model)  # fmt: skip
    check = check_runs(tables, selection.runs)
    if check.problems and not allow_gaps:
        raise GapsError(check, "Table 2")
    if selection.missing:
        raise MissingRunsError(selection.missing, missing_message(selection.missing, profile, selection.seeds,
                                                                  include_adhoc=include_adhoc, model=model))  # fmt: skip
    notes = [f"W&B reader: {p}" for p in tables.problems] + list(selection.notes)
    by_version: dict[str, list[str]] = {}
    for experiment in TABLE2_EXPERIMENTS:
        for c in selection.chosen[experiment]:
            by_version.setdefault(c.benchmark_version, []).append(f"{experiment} s{c.seed} ({c.run_id})")
    mixed = len(by_version) > 1
    if mixed and not allow_mixed_versions:
        detail = "; ".join(f"{v}: {', '.join(runs)}" for v, runs in sorted(by_version.items()))
        raise MixedVersionsError(
            f"the measured rows were evaluated on different benchmark versions ({detail}). Rerun the odd ones on "
            "one version, or pass --allow-mixed-versions to label every row with its version."
        )
    decodings = {e: [read_decoding(check, c.run_id, c.metrics_path) for c in selection.chosen[e]]
                 for e in TABLE2_EXPERIMENTS}  # fmt: skip
    mixed_decoding = len({d.key for ds in decodings.values() for d in ds}) > 1
    if mixed_decoding and not allow_mixed_decoding:
        raise MixedDecodingError(mixed_decoding_message(selection, decodings))
    silent = {e: [read_silent(check, c) for c in selection.chosen[e]] for e in TABLE2_EXPERIMENTS}
    differing = [(c, s) for e in TABLE2_EXPERIMENTS for c, s in zip(selection.chosen[e], silent[e], strict=True)
                 if s.status == DIFFERS]  # fmt: skip
    if differing and not allow_mixed_decoding:
        raise MixedDecodingError(silent_mismatch_message(differing, profile, rule))
    cache: dict[Path, dict[str, bool] | str] = {}
    rows = [_measured_row(e, selection.chosen[e], cache, notes, decodings[e]) for e in TABLE2_EXPERIMENTS]
    label = model_slug(str(model)) if model_flag(profile, model) else None
    for row in rows:
        row.model_label = label
        row.silent = silent[row.experiment]
        row.chance = next((v for v in (chance_level(c.predictions) for c in row.checkpoints) if v is not None), None)
    notes += _silent_notes(rows, profile, rule)
    mcnemar = [_mcnemar(a, b, selection, cache, notes) for a, b in MCNEMAR_PAIRS]
    notes += check.notes()
    blocks = [build_block(rows, check, name) for name in block_sets(rows)]
    return Table2(profile, rule, source, rows, mcnemar, notes, mixed, mixed_decoding, check, include_adhoc,
                  bool(differing), selection.model, blocks)  # fmt: skip


def _silent_notes(rows: list[MeasuredRow], profile: str, rule: str) -> list[str]:
    """What each silent-audio cell rests on where it is not a plain measurement: missing (and the command that
    makes it), not readable here, or decoded unlike its real evaluation (allowed)."""
    notes = []
    for row in rows:
        for c, s in zip(row.checkpoints, row.silent, strict=True):
            which = f"{row.label}, seed {c.seed} (run {c.run_id}, step {c.step})"
            if s.status == MISSING:
                notes.append(f"{which}: no silent-audio evaluation ({s.detail}); the silent audio and listening gain "
                             f"cells say n/a. Run `{silent_command(profile, rule)}`.")  # fmt: skip
            elif s.status == NOT_HERE:
                notes.append(f"{which}: silent-audio evaluation not read ({s.detail}); the silent audio and listening "
                             "gain cells say n/a.")  # fmt: skip
            elif s.status == DIFFERS:
                notes.append(f"{which}: **the silent-audio evaluation was decoded unlike the real one** "
                             f"({'; '.join(s.differences)}); shown anyway (--allow-mixed-decoding).")  # fmt: skip
    return notes


def silent_mismatch_message(differing: list[tuple[SelectedCheckpoint, SilentEval]], profile: str, rule: str) -> str:
    """Why Table 2 refuses a silent control decoded unlike the evaluation it controls, and the two ways on."""
    lines = ["some silent-audio evaluations were not decoded like the real evaluations they control, so their "
             "difference is not the audio's alone:"]  # fmt: skip
    lines += [f"  - {PAPER_ROWS[c.experiment].label}, seed {c.seed} (run {c.run_id}, step {c.step}), "
              f"{c.silent_metrics_path}: {'; '.join(s.differences)}" for c, s in differing]  # fmt: skip
    lines += [
        "Either:",
        "  - delete those silent evaluations' directories and evaluate them again with each run's own settings:",
        *(f"      rm -r {c.silent_dir}" for c, _ in differing),
        f"      {silent_command(profile, rule)}",
        "  - or pass --allow-mixed-decoding to write the table anyway, with each such cell named in the notes.",
    ]
    return "\n".join(lines)


def _decoding_words(d: Decoding) -> str:
    words = f"compute dtype {d.compute_dtype}, decoding {d.source}" + (", sampled" if d.greedy is False else "")
    return words + (f" ({d.reason})" if d.reason else "")


def mixed_decoding_message(selection: Selection, decodings: dict[str, list[Decoding]]) -> str:
    """Why Table 2 refuses mixed decoding: each selected evaluation's dtype and source, and the two ways on."""
    pairs = [(c, d) for e in TABLE2_EXPERIMENTS for c, d in zip(selection.chosen[e], decodings[e], strict=True)]
    differ = [f"{what} {', '.join(values)}" for what, values in (
        ("compute dtypes", sorted({d.compute_dtype for _, d in pairs})),
        ("decoding sources", sorted({d.source for _, d in pairs}))) if len(values) > 1]  # fmt: skip
    lines = [f"the measured rows were not all decoded the same way ({'; '.join(differ)}):"]
    lines += [f"  - {PAPER_ROWS[c.experiment].label}, seed {c.seed} (run {c.run_id}, step {c.step}): "
              f"{_decoding_words(d)}" for c, d in pairs]  # fmt: skip
    # The setting most evaluations share (known ones only: an unknown row is never the one to match).
    counts = Counter(d.key for _, d in pairs if UNKNOWN not in d.key)
    common = max(counts, key=lambda k: counts[k]) if counts else None
    odd = [c for c, d in pairs if d.key != common]
    lines += [
        "Rows decoded in different precision or with different generation settings are not comparable. Either:",
        "  - rerun the runs that differ" + (f" from the rest (most share compute dtype {common[0]}, decoding "
                                            f"{common[1]})" if common else "")
        + " with this version of the suite, which decodes every evaluation of a profile in one dtype with neutral "
        "greedy settings and records both in metrics.json (the table takes the latest finished run of each "
        "experiment and seed):",
        *(f"      python -m experiments run {c.experiment} --profile {c.profile} --seed {c.seed} --output-dir "
          "<new run dir>" for c in odd),
        *(["    An unknown row whose run directory is elsewhere may need no rerun: run the report on the machine that "
           "holds it."] if any(d.reason == NOT_ON_THIS_MACHINE for _, d in pairs) else []),
        "  - or pass --allow-mixed-decoding to write the table anyway, with a warning and each row's decoding in the "
        "provenance.",
    ]  # fmt: skip
    return "\n".join(lines)
