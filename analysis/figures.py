"""Figures 3 and 4 of the paper from the suite's W&B runs: GRPO and SFT convergence.

    python -m analysis.figures fig3|fig4 [--wandb-dir outputs/wandb | --wandb ENTITY/PROJECT] [--profile toy]
                                         [--select best-val|final|best-test] [--out reports/<profile>]
                                         [--allow-gaps] [--include-adhoc]

- ``fig3``: GRPO + Prompt <2> and GRPO + Prompt <3>: accuracy reward, format reward and total reward per optimizer
  step (raw series faint, EMA-smoothed bold), and test accuracy (%) at every evaluated checkpoint (step 0 = the
  base model);
- ``fig4``: Full and LoRA SFT + Prompt <1>: training loss per step (raw faint, smoothed bold) and test accuracy.

A run judged on more benchmarks than MMAU test-mini (``eval.benchmarks``: MMAR, or the toy's mixed test in MMAR's
shape) gets one more accuracy panel per benchmark after the paper's (Fig. 3(e), 4(c)), at the same checkpoints.
The test accuracy panels (Fig. 3(d), 4(b), and those) also draw, dashed and labelled, the test set's chance level and each
experiment's silent-audio level: the accuracy of the checkpoints Table 2 selects (``--select``, as the table's) with
every clip replaced by silence (:mod:`controls.silent`; mean over seeds). A level that cannot be read is left out and
the legend says so, naming the command that measures it.

Writes ``<out>/fig3.png`` and ``<out>/fig3.pdf`` (or fig4), atomically; ``<out>`` is ``reports/<profile>`` unless
``--out`` says otherwise. The runs are the same as Table 2's (latest finished, non-ad-hoc run per experiment and seed
of the profile; see :mod:`analysis.select`; with ``--include-adhoc`` ad hoc runs are candidates too and the legend
marks them); with several seeds each line is the mean over seeds with a band of one standard deviation. A step
logged twice (a resumed run) counts once, with its last logged value. Experiments differ in line style and marker
as well as colour, so the figures read in grey scale. The PDF carries no creation date, so rerunning on the same
runs gives identical files. Exit status 2 when a needed experiment has no run (the message says which commands
produce it); 1 when the runs' W&B evaluations disagree with their run directories on this machine (the check of
:mod:`analysis.crosscheck`, as for Table 2; ``--allow-gaps`` draws the figure anyway and lists the problems).

Matplotlib is used without pyplot (a bare ``Figure``; the Agg/PDF backends are chosen by the file type), so
importing or calling this module changes no global plotting state.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.crosscheck import CrossCheck, GapsError, check_runs
from analysis.paper_numbers import PAPER_BENCHMARK_VERSION, PAPER_ROWS
from analysis.runs import RunTables
from analysis.select import (
    DEFAULT_RULE,
    STEP_KEY,
    VAL_KEY,
    MissingRunsError,
    Selection,
    benchmark_version,
    eval_rows,
    last_per_step,
    missing_message,
    model_flag,
    run_is_adhoc,
    select_checkpoints,
)
from analysis.silent import chance_level, read_silent, silent_command
from data.io import write_bytes_atomic
from data.run_files import PREDICTIONS_FILE
from experiments.profiles import model_slug

TEST_AVG = "eval/test/avg"


@dataclass(frozen=True)
class Panel:
    """One subplot: a logged training metric per step, or (metric None) accuracy at the checkpoints on one
    evaluation set (``test``: MMAU test-mini; ``mmar``: MMAR or the toy's mixed test)."""

    title: str
    ylabel: str
    metric: str | None = None
    eval_set: str = "test"


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    experiments: tuple[str, ...]
    panels: tuple[Panel, ...]
    ncols: int
    size: tuple[float, float]  # inches: about the width of a two-column page


FIGURES: dict[str, FigureSpec] = {
    "fig3": FigureSpec(
        "fig3", "Fig. 3: GRPO convergence", ("grpo-p2", "grpo-p3"),
        (
            Panel("(a) Accuracy reward, mean per completion", "reward (0-1)", "train/rewards/accuracy/mean"),
            Panel("(b) Format reward, mean per completion", "reward (0-1)", "train/rewards/format/mean"),
            Panel("(c) Total reward (accuracy + format)", "reward (0-2)", "train/reward"),
            Panel("(d) Test accuracy at the checkpoints", "accuracy (%)"),
        ),
        ncols=2, size=(7.2, 5.9),
    ),
    "fig4": FigureSpec(
        "fig4", "Fig. 4: SFT convergence", ("sft-full", "sft-lora"),
        (
            Panel("(a) Training loss", "cross-entropy (nats/token)", "train/loss"),
            Panel("(b) Test accuracy at the checkpoints", "accuracy (%)"),
        ),
        ncols=2, size=(7.2, 3.4),
    ),
}  # fmt: skip

# Colour, line style and marker together: dark blue solid circles vs orange dashed squares stay apart in grey.
STYLES: dict[str, dict[str, Any]] = {
    "grpo-p2": {"color": "#1f4e99", "linestyle": "-", "marker": "o"},
    "grpo-p3": {"color": "#d9822b", "linestyle": "--", "marker": "s"},
    "sft-full": {"color": "#1f4e99", "linestyle": "-", "marker": "o"},
    "sft-lora": {"color": "#d9822b", "linestyle": "--", "marker": "^"},
}
RC = {
    "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 8, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "axes.spines.top": False,
    "axes.spines.right": False, "pdf.fonttype": 42,
}  # fmt: skip
PNG_DPI = 200


def ema_time_constant(n_steps: int) -> float:
    """Smoothing time constant in steps: about 2% of the run (10 steps for the paper's 500), at least 2."""
    return max(2.0, n_steps / 50.0)


def ema(values: Sequence[float], time_constant: float) -> list[float]:
    """Debiased exponential moving average (as TensorBoard's smoothing): no pull towards 0 at the start.

    NaN values are skipped (the previous average is carried), so a step that logged nothing does not break the line.
    """
    weight = 1.0 - 1.0 / time_constant
    out: list[float] = []
    acc, norm = 0.0, 0.0
    for v in values:
        if v == v:
            acc = weight * acc + (1.0 - weight) * v
            norm = weight * norm + (1.0 - weight)
        out.append(acc / norm if norm > 0 else math.nan)
    return out


def _series(history: pd.DataFrame, metric: str) -> pd.Series:
    """One run's metric per optimizer step (training rows only; a step logged twice keeps its last value)."""
    if metric not in history.columns:
        return pd.Series(dtype=float)
    rows = last_per_step(history[[STEP_KEY, metric]].dropna())  # history is in logging order
    return pd.Series(rows[metric].to_numpy(dtype=float), index=rows[STEP_KEY].astype(int).to_numpy())


def _across_seeds(series: list[pd.Series]) -> tuple[pd.Series, pd.Series | None]:
    """Mean over seeds per step, and the standard deviation over seeds (None with one seed)."""
    frame = pd.concat(series, axis=1) if len(series) > 1 else series[0].to_frame()
    mean = frame.mean(axis=1, skipna=True)
    if frame.shape[1] < 2:
        return mean, None
    return mean, frame.std(axis=1, ddof=1, skipna=True)


@dataclass
class ExperimentRuns:
    experiment: str
    label: str
    histories: list[pd.DataFrame]
    evals: dict[str, list[pd.Series]]  # per evaluation set: accuracy per evaluated step, one per seed
    seeds: list[int]
    versions: list[str]
    adhoc: bool = False  # some of the runs are ad hoc (only with --include-adhoc)
    set_versions: dict[str, list[str]] = field(default_factory=dict)  # further sets: their benchmark versions


def _collect(tables: RunTables, runs: list[dict[str, Any]], experiment: str) -> ExperimentRuns:
    histories, versions = [], []
    evals: dict[str, list[pd.Series]] = {}
    for run in runs:
        history = tables.history[tables.history["run_id"] == run["run_id"]].sort_values("_step", kind="stable")
        histories.append(history)
        rows = eval_rows(tables, run["run_id"])  # one per step (older runs logged the last step twice)
        for key in [TEST_AVG, *(k for k in rows.columns if str(k).endswith("/avg") and k not in (TEST_AVG, VAL_KEY))]:
            values = pd.Series(rows[key].to_numpy(dtype=float), index=rows["step"].to_numpy()).sort_index()
            evals.setdefault(str(key).split("/")[1], []).append(values.dropna() if key != TEST_AVG else values)
        versions.append(benchmark_version(run, None))
    seeds = [int(run["config"].get("seed", 0)) for run in runs]
    adhoc = any(run_is_adhoc(run) for run in runs)
    set_versions = {
        name: sorted({str(v) for run in runs if (v := (run.get("summary") or {}).get(f"benchmark_version/{name}"))})
        for name in evals
        if name != "test"
    }
    return ExperimentRuns(experiment, PAPER_ROWS[experiment].label, histories, evals, seeds, sorted(set(versions)),
                          adhoc, set_versions)  # fmt: skip


def _draw_training(ax: Any, data: ExperimentRuns, metric: str, tau: float) -> bool:
    series = [s for s in (_series(h, metric) for h in data.histories) if not s.empty]
    if not series:
        return False
    style = STYLES.get(data.experiment, {})
    raw_mean, _ = _across_seeds(series)
    smoothed = [pd.Series(ema(s.tolist(), tau), index=s.index) for s in series]
    mean, std = _across_seeds(smoothed)
    steps = mean.index.to_numpy()
    ax.plot(raw_mean.index.to_numpy(), raw_mean.to_numpy(), color=style.get("color"), linewidth=0.7, alpha=0.3)
    if std is not None:
        ax.fill_between(steps, (mean - std).to_numpy(), (mean + std).to_numpy(), color=style.get("color"),
                        alpha=0.15, linewidth=0)  # fmt: skip
    ax.plot(steps, mean.to_numpy(), linewidth=1.8, markersize=4, markevery=max(1, len(steps) // 8),
            markerfacecolor="white", **style)  # fmt: skip
    return True


def _draw_accuracy(ax: Any, data: ExperimentRuns, paper_line: bool, eval_set: str = "test") -> bool:
    series = [s for s in data.evals.get(eval_set, []) if not s.empty]
    if not series:
        return False
    style = STYLES.get(data.experiment, {})
    mean, std = _across_seeds(series)
    steps = mean.index.to_numpy()
    if std is not None:
        ax.fill_between(steps, (mean - std).to_numpy(), (mean + std).to_numpy(), color=style.get("color"),
                        alpha=0.15, linewidth=0)  # fmt: skip
    ax.plot(steps, mean.to_numpy(), linewidth=1.5, markersize=4.5, markerfacecolor="white", **style)
    if paper_line:  # the paper's reported number, only when our benchmark is the paper's
        paper = PAPER_ROWS[data.experiment].avg
        ax.axhline(paper, color=style.get("color"), linestyle=":", linewidth=1.0)
        ax.annotate(f"paper {paper:.1f}", (1.0, paper), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=7, color=style.get("color"),
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})  # fmt: skip
    return True


def _legend_handles(spec: FigureSpec, data: list[ExperimentRuns], several_seeds: bool, tau: float,
                    paper_lines: bool, levels: Levels | None = None) -> tuple[list[Any], int]:  # fmt: skip
    """Legend entries in two columns (experiments left, line encodings right) and the number of rows; ``levels``:
    the accuracy panel's chance and silent-audio lines (None: none drawn)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    experiments: list[Any] = []
    for d in data:
        seeds = f"{len(d.seeds)} seeds" if len(d.seeds) > 1 else f"seed {d.seeds[0]}"
        seeds += ", ad hoc" if d.adhoc else ""
        experiments.append(Line2D([], [], linewidth=1.8, markerfacecolor="white", label=f"{d.label} ({seeds})",
                                  **STYLES.get(d.experiment, {})))  # fmt: skip
    encodings: list[Any] = []
    if any(p.metric for p in spec.panels):
        encodings.append(Line2D([], [], color="0.45", linewidth=0.7, alpha=0.5, label="raw, per step"))
        encodings.append(
            Line2D([], [], color="0.2", linewidth=1.8, label=f"EMA-smoothed (time constant {tau:g} steps)")
        )
    if several_seeds:
        encodings.append(Patch(color="0.5", alpha=0.3, label="mean ± 1 s.d. over seeds"))
    if paper_lines:
        encodings.append(Line2D([], [], color="0.2", linestyle=":", label="paper's reported test accuracy"))
    per_panel = sum(p.metric is None for p in spec.panels) > 1
    encodings += _level_handles(levels, per_panel) if levels is not None else []
    rows = max(len(experiments), len(encodings))

    def blank() -> Any:
        return Line2D([], [], linestyle="none", label=" ")

    # The legend fills column by column: pad each column to the same height.
    column1 = experiments + [blank() for _ in range(rows - len(experiments))]
    column2 = encodings + [blank() for _ in range(rows - len(encodings))]
    return column1 + column2, rows


@dataclass
class FigureRuns:
    """The runs a figure draws (experiment -> run rows), the notes on the runs left out, the run dir check, and the
    checkpoints Table 2 selects from them (whose silent-audio levels the accuracy panel draws)."""

    picked: dict[str, list[dict[str, Any]]]
    notes: list[str]
    check: CrossCheck
    selection: Selection


def figure_runs(
    tables: RunTables, spec: FigureSpec, profile: str, *, rule: str = DEFAULT_RULE, include_adhoc: bool = False,
    allow_gaps: bool = False, model: str | None = None,
) -> FigureRuns:  # fmt: skip
    """Pick the runs of ``spec``'s experiments and their checkpoints by ``rule`` (as Table 2 does:
    :func:`analysis.select.select_checkpoints`) and check the runs against their run directories.

    Raises:
        GapsError: a run's W&B evaluations disagree with its run directory (unless ``allow_gaps``).
        MissingRunsError: an experiment of the figure has no finished, non-ad-hoc run of ``profile`` (with
            ``include_adhoc``: no finished run).
    """
    selection = select_checkpoints(tables, profile, rule, spec.experiments, include_adhoc=include_adhoc, model=model)
    picked = selection.runs
    check = check_runs(tables, picked)
    what = spec.title.split(":")[0]
    if check.problems and not allow_gaps:
        raise GapsError(check, what)
    missing = [e for e in spec.experiments if e not in picked]
    if missing:
        raise MissingRunsError(missing, missing_message(missing, profile, what=what, include_adhoc=include_adhoc,
                                                        model=model))  # fmt: skip
    return FigureRuns(picked, selection.notes, check, selection)


@dataclass
class Levels:
    """The reference levels of the test-accuracy panel: the test set's chance accuracy and, per experiment, the
    silent-audio accuracy of its selected checkpoints (mean over seeds; None where a seed has none)."""

    chance: float | None
    silent: dict[str, float | None]
    command: str  # what writes the missing silent evaluations


def _predictions(c: Any, eval_set: str) -> Path | None:
    where = c.set_dir(eval_set)
    return where / PREDICTIONS_FILE if where is not None else None


def levels(runs: FigureRuns, spec: FigureSpec, profile: str, eval_set: str = "test") -> Levels:
    """Chance (from the selected checkpoints' saved predictions) and each experiment's silent-audio level, on one
    evaluation set."""
    chosen = runs.selection.chosen
    chance = next((v for e in spec.experiments for c in chosen.get(e, [])
                   if (v := chance_level(_predictions(c, eval_set))) is not None), None)  # fmt: skip
    silent: dict[str, float | None] = {}
    for experiment in spec.experiments:
        values = [read_silent(runs.check, c, eval_set).avg for c in chosen.get(experiment, [])]
        known = [v for v in values if v is not None]
        silent[experiment] = math.fsum(known) / len(known) if known and len(known) == len(values) else None
    return Levels(chance, silent, silent_command(profile, runs.selection.rule))


CHANCE_STYLE: dict[str, Any] = {"color": "0.35", "linestyle": "--", "linewidth": 1.0}
SILENT_DASHES: Any = (0, (1.5, 1.5))  # finer than grpo-p3's dashes, so a silent level never reads as a curve


def _draw_levels(ax: Any, data: list[ExperimentRuns], lv: Levels) -> None:
    """Horizontal dashed lines: chance, and each experiment's silent-audio level. Each is labelled with its value in
    its own slot along the x axis (chance at the left, then one per experiment), so that levels which coincide (a
    model at chance with silent audio) keep readable labels; the right edge is left to the paper's lines."""
    marks: list[tuple[float, str, Any]] = []
    if lv.chance is not None:
        ax.axhline(lv.chance, label=f"chance {lv.chance:.1f}%", gid="chance", **CHANCE_STYLE)
        marks.append((lv.chance, f"chance {lv.chance:.1f}", CHANCE_STYLE["color"]))
    for d in data:
        value = lv.silent.get(d.experiment)
        if value is None:
            continue
        color = STYLES.get(d.experiment, {}).get("color")
        ax.axhline(value, color=color, linestyle=SILENT_DASHES, linewidth=1.1, label=f"silent audio, {d.label}",
                   gid=f"silent:{d.experiment}")  # fmt: skip
        marks.append((value, f"silent {value:.1f}", color))
    for slot, (y, text, color) in enumerate(marks):
        ax.annotate(text, (0.22 * slot, y), xycoords=("axes fraction", "data"), xytext=(2, 2),
                    textcoords="offset points", ha="left", va="bottom", fontsize=7, color=color,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})  # fmt: skip


def _level_handles(lv: Levels, per_panel: bool = False) -> list[Any]:
    """Legend entries for the levels; a missing level is named with the command that measures it. ``per_panel``:
    several accuracy panels, each with its own chance level (its value is written on each panel)."""
    from matplotlib.lines import Line2D

    chance = f"chance level (mean 1/choices): {lv.chance:.1f}%" if lv.chance is not None else \
        "chance level: n/a (no saved predictions here)"  # fmt: skip
    chance = "chance level (mean 1/choices; its value on each panel)" if per_panel else chance
    out = [Line2D([], [], label=chance, **CHANCE_STYLE)]
    if any(v is not None for v in lv.silent.values()):
        out.append(Line2D([], [], color="0.2", linestyle=SILENT_DASHES, linewidth=1.1,
                          label="silent audio at the selected checkpoint"))  # fmt: skip
    absent = [PAPER_ROWS[e].label for e, v in lv.silent.items() if v is None]
    out += [Line2D([], [], linestyle="none", label=f"silent audio, {label}: not measured") for label in absent]
    if absent:
        out.append(Line2D([], [], linestyle="none", label=f"(measure it: {lv.command})"))
    return out


PANEL_ROW_INCHES = 2.5  # the height one more row of panels adds to a figure


def _set_title(name: str, versions: Sequence[str]) -> str:
    """A further set's name in a panel title: the benchmark's, or "test in MMAR's shape (toy-...)" for a test that
    is no registered version of it (the toy's mixed test)."""
    from data.benchmark_registry import benchmark_of_set

    spec = benchmark_of_set(name)
    if versions and set(versions) <= set(spec.file_versions.values()):
        return f"{spec.title} {', '.join(versions)}"
    return f"test in {spec.title}'s shape ({', '.join(versions) or 'version unknown'})"


def with_benchmark_panels(spec: FigureSpec, sets: dict[str, list[str]]) -> FigureSpec:
    """``spec`` with one more accuracy panel per further evaluation set the runs logged (``{set: versions}``, in
    order), lettered after the paper's panels, the figure taller by a row where the grid needs one."""
    from dataclasses import replace

    names = list(sets)
    if not names:
        return spec
    letters = "abcdefghij"
    extra = tuple(
        Panel(f"({letters[len(spec.panels) + i]}) Accuracy at the checkpoints, {_set_title(n, sets[n])}",
              "accuracy (%)", None, n)
        for i, n in enumerate(names)
    )  # fmt: skip
    panels = (*spec.panels, *extra)
    added_rows = math.ceil(len(panels) / spec.ncols) - math.ceil(len(spec.panels) / spec.ncols)
    return replace(spec, panels=panels, size=(spec.size[0], spec.size[1] + PANEL_ROW_INCHES * added_rows))


def draw(
    tables: RunTables, spec: FigureSpec, profile: str, *, rule: str = DEFAULT_RULE, include_adhoc: bool = False,
    allow_gaps: bool = False, runs: FigureRuns | None = None,
) -> Any:  # fmt: skip
    """The figure for ``spec`` from the runs of ``profile``, as a matplotlib ``Figure`` (drawn under :data:`RC`).

    ``runs`` (from :func:`figure_runs`) saves picking and checking the runs again.

    Raises:
        GapsError, MissingRunsError: see :func:`figure_runs`.
    """
    import matplotlib
    from matplotlib.figure import Figure

    if runs is None:
        runs = figure_runs(tables, spec, profile, rule=rule, include_adhoc=include_adhoc, allow_gaps=allow_gaps)
    picked = runs.picked
    data = [_collect(tables, picked[e], e) for e in spec.experiments]
    further: dict[str, list[str]] = {}
    for d in data:
        for name, versions in d.set_versions.items():
            further[name] = sorted({*further.get(name, []), *versions})
    spec = with_benchmark_panels(spec, further)
    lv = {p.eval_set: levels(runs, spec, profile, p.eval_set) for p in spec.panels if p.metric is None}
    versions = sorted({v for d in data for v in d.versions})
    longest = max((len(_series(h, p.metric)) for d in data for h in d.histories for p in spec.panels if p.metric),
                  default=0)  # fmt: skip
    tau = ema_time_constant(longest)
    paper_lines = versions == [PAPER_BENCHMARK_VERSION]
    several = any(len(d.seeds) > 1 for d in data)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=spec.size)
        nrows = math.ceil(len(spec.panels) / spec.ncols)
        axes = fig.subplots(nrows, spec.ncols, squeeze=False).ravel()
        for ax, panel in zip(axes, spec.panels, strict=False):  # a grid may have spare axes
            paper_here = paper_lines and panel.eval_set == "test"
            drawn = [
                _draw_training(ax, d, panel.metric, tau)
                if panel.metric
                else _draw_accuracy(ax, d, paper_here, panel.eval_set)
                for d in data
            ]
            if panel.metric is None:  # an accuracy panel: what chance and not listening would score
                _draw_levels(ax, data, lv[panel.eval_set])
            if not any(drawn):
                ax.text(0.5, 0.5, f"not logged:\n{panel.metric or f'eval/{panel.eval_set}/avg'}", ha="center",
                        va="center", transform=ax.transAxes, color="0.4")  # fmt: skip
            ax.set_title(panel.title, loc="left")
            ax.set_xlabel("optimizer step")
            ax.set_ylabel(panel.ylabel)
        last_step = max((int(s.index.max()) for d in data for s in d.evals.get("test", []) if not s.empty),
                        default=0)  # fmt: skip
        for ax in axes[: len(spec.panels)]:
            if last_step > 0:  # one x range for every panel, from the base model (step 0) to the last step
                ax.set_xlim(0, last_step * 1.02)
        for ax in axes[len(spec.panels) :]:
            ax.set_visible(False)
        model = runs.selection.model
        on_model = (
            f"; model {model_slug(str(model))}" if model_flag(profile, model) else ""
        )  # another than the profile's
        fig.suptitle(f"{spec.title} (profile {profile}{on_model}; test set: benchmark {', '.join(versions)})",
                     fontsize=10, fontweight="bold", y=1 - 0.06 / spec.size[1], va="top")  # fmt: skip
        handles, legend_rows = _legend_handles(spec, data, several, tau, paper_lines, lv["test"])
        fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False, columnspacing=3.0)
        # Leave room at the bottom for the legend (about 0.17 inch per row) and at the top for the title.
        fig.tight_layout(rect=(0, (0.08 + 0.17 * legend_rows) / spec.size[1], 1, 1))
    return fig


def render(
    tables: RunTables, spec: FigureSpec, profile: str, *, rule: str = DEFAULT_RULE, include_adhoc: bool = False,
    allow_gaps: bool = False, runs: FigureRuns | None = None,
) -> dict[str, bytes]:  # fmt: skip
    """Draw the figure for ``spec`` (:func:`draw`); returns the PNG and PDF file contents.

    Raises:
        GapsError, MissingRunsError: see :func:`figure_runs`.
    """
    import matplotlib

    fig = draw(tables, spec, profile, rule=rule, include_adhoc=include_adhoc, allow_gaps=allow_gaps, runs=runs)
    with matplotlib.rc_context(RC):
        # Render both files inside the rc context: the settings apply while drawing.
        png, pdf = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=PNG_DPI)
        # No CreationDate (and a fixed Creator string): reruns on the same runs give byte-identical PDFs.
        fig.savefig(pdf, format="pdf", metadata={"CreationDate": None, "Creator": "python -m analysis.figures"})
    return {"png": png.getvalue(), "pdf": pdf.getvalue()}


def write_figure(
    tables: RunTables, name: str, profile: str, out_dir: str | Path, *, rule: str = DEFAULT_RULE,
    include_adhoc: bool = False, allow_gaps: bool = False, runs: FigureRuns | None = None,
) -> dict[str, Path]:  # fmt: skip
    """Render figure ``name`` (fig3 or fig4) and write its PNG and PDF into ``out_dir``; returns the paths.

    Raises:
        GapsError, MissingRunsError: see :func:`figure_runs`.
    """
    files = render(tables, FIGURES[name], profile, rule=rule, include_adhoc=include_adhoc, allow_gaps=allow_gaps,
                   runs=runs)  # fmt: skip
    paths = {ext: Path(out_dir) / f"{name}.{ext}" for ext in ("png", "pdf")}
    for ext, path in paths.items():
        write_bytes_atomic(path, files[ext])
    return paths


def main(argv: list[str] | None = None) -> int:
    from analysis.sources import out_dir, report_parser, run_report

    parser = report_parser("python -m analysis.figures", __doc__,
                           select_help="the checkpoints whose silent-audio levels panel (d) of fig3 / (b) of fig4 "
                           "draws, as Table 2 selects them (default best-val)")  # fmt: skip
    parser.add_argument("figure", choices=list(FIGURES), help="fig3 (GRPO convergence) or fig4 (SFT convergence)")
    args = parser.parse_args(argv)
    spec = FIGURES[args.figure]

    def draw(tables: RunTables, _source: str) -> int:
        runs = figure_runs(tables, spec, args.profile, rule=args.select, include_adhoc=args.include_adhoc,
                           allow_gaps=args.allow_gaps, model=args.model)  # fmt: skip
        paths = write_figure(tables, args.figure, args.profile, out_dir(args), runs=runs)
        for note in runs.notes:  # the runs left out, as table2 lists them
            print(f"note: {note}", file=sys.stderr)
        if args.include_adhoc:
            adhoc = [f"{e} s{run['config'].get('seed')} (run {run['run_id']})" for e, rs in runs.picked.items()
                     for run in rs if run_is_adhoc(run)]  # fmt: skip
            print(f"note: --include-adhoc: ad hoc runs drawn: {', '.join(adhoc) or 'none'}", file=sys.stderr)
        for problem in runs.check.problems:
            print(f"warning (--allow-gaps): {problem.message()}", file=sys.stderr)
        print(f"written: {', '.join(str(p) for p in paths.values())}")
        return 0

    return run_report(args, spec.experiments, draw, what=args.figure)


if __name__ == "__main__":
    sys.exit(main())
