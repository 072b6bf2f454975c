"""Which runs and which checkpoint of each run a report uses: the choices that Table 2 and the figures rest on.

Runs: for each Table 2 experiment and seed of one profile, the *latest finished, non-ad-hoc* run (latest by the
time of its last logged row). Every other run of that profile and experiment (ad hoc runs, failed or unfinished
runs, earlier runs superseded by a rerun) is left out and named in a note, so that nothing is dropped silently.
A run is ad hoc when its config says ``adhoc`` (``--set`` overrides), ``canonical: false`` or lists
``adhoc_reasons``, or it carries the ``adhoc`` tag. With ``include_adhoc`` (``--include-adhoc``) ad hoc runs are
candidates too, and the latest finished run wins whatever its settings; the reports then mark them.

Checkpoints (``--select``), among the evaluation rows of a run's history (step 0 = the base model, then every save;
the final model is the last save). The rows are taken one per step, the last logged: a resumed run may log a step
again, and runs of earlier versions logged the final model's row a second time at the last step.

- ``best-val`` (default): the highest ``eval/val/avg`` (the held-out validation split), ties to the earliest step;
  the honest choice, since the test set plays no part in it;
- ``final``: the last evaluation row, i.e. the model training ended with;
- ``best-test``: the highest ``eval/test/avg``, ties to the earliest step. This is what the paper did (the original
  code picked checkpoints on MMAU test-mini itself); it selects on the test set and flatters every trained row.

A ``direct`` run has a single evaluation (step 0), which every rule selects.

Each selected checkpoint also names where its silent-audio control lives (``SelectedCheckpoint.silent_dir``, beside
the selected test evaluation), so that :mod:`controls.silent` writes it and the reports read it at one place.

Usage::

    from analysis.runs import read_offline_runs
    from analysis.select import select_checkpoints
    sel = select_checkpoints(read_offline_runs("outputs/wandb"), profile="toy", rule="best-val")
    sel.chosen["grpo-p2"][0].step, sel.chosen["grpo-p2"][0].predictions, sel.notes, sel.missing
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.paper_numbers import TABLE2_EXPERIMENTS, TASK_COLUMNS
from analysis.runs import RunTables
from data.io import read_json
from data.run_files import (
    COMPLETE_MARKER,
    DIRECT_SILENT_DIR,
    EXPERIMENT_FILE,
    FINAL_DIR,
    METRICS_FILE,
    PREDICTIONS_FILE,
    RUN_ID_FILE,
    STEP_KEY,
    checkpoint_dir,
)
from data.schema import DataError

SELECTION_RULES: dict[str, str] = {
    "best-val": "highest validation accuracy (eval/val/avg), ties to the earliest step",
    "final": "the last evaluation (the model at the end of training)",
    "best-test": "highest test accuracy (eval/test/avg), ties to the earliest step: selection on the test set, "
    "as in the paper",
}
DEFAULT_RULE = "best-val"
TEST_KEYS: dict[str, str] = {task: f"eval/test/{task}" for task in TASK_COLUMNS}
VAL_KEY = "eval/val/avg"
UNKNOWN_VERSION = "unknown"
SILENT_TEST = "test-silent"  # a checkpoint's silent-audio test evaluation, beside its eval/test/


@dataclass(frozen=True)
class SelectedCheckpoint:
    """The checkpoint of one run that a report uses, with everything needed to trace its numbers back."""

    experiment: str
    seed: int
    run_id: str
    run_name: str
    profile: str
    rule: str  # the rule applied: the one asked for, or "only evaluation" / a fallback (see ``rule_note``)
    step: int
    test: dict[str, float | None]  # sound, music, speech, avg in percent, as logged at that step
    val_avg: float | None
    benchmark_version: str
    predictions: Path | None  # that step's saved test predictions (may be absent on this machine)
    n_evals: int  # how many evaluations (distinct steps) the run logged
    rule_note: str = ""
    output_dir: str | None = None  # the run directory (config.output_dir), where the run wrote it
    adhoc_reasons: tuple[str, ...] = ()  # why the run is ad hoc (empty: a canonical run)
    direct: bool = False  # a run without training (``direct``): its one evaluation is of the base model
    # The other benchmarks' accuracies at that step, as logged: {set: {column: %}}, e.g. {"mmar": {"avg": 47.1}}.
    others: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def adhoc(self) -> bool:
        return bool(self.adhoc_reasons)

    @property
    def metrics_path(self) -> Path | None:
        """The selected evaluation's test ``metrics.json``: written beside its predictions by the evaluator."""
        return self.predictions.with_name(METRICS_FILE) if self.predictions is not None else None

    def set_dir(self, name: str = "test") -> Path | None:
        """Where this checkpoint's evaluation on set ``name`` lives (``test``: MMAU test-mini; ``mmar``; ...).

        ``test``: the folder of :attr:`predictions`. Another set: ``checkpoint-<step>/eval/<set>/``, ``final/<set>/``
        for a final model evaluated in ``final/``, and ``<run dir>/<set>/`` for ``direct``. None without a run dir.
        """
        if self.predictions is None:
            return None
        if name == "test":
            return self.predictions.parent
        if self.output_dir is None:
            return None
        out = Path(self.output_dir)
        if self.direct:
            return out / name
        if self.predictions.parent == out:  # the final model, evaluated in final/ (its test results copied up)
            return out / FINAL_DIR / name
        return self.predictions.parent.with_name(name)  # checkpoint-<step>/eval/test -> eval/<set>

    def silent_dir_of(self, name: str = "test") -> Path | None:
        """Where the silent-audio control of this checkpoint on set ``name`` lives (written by
        :mod:`controls.silent`, read by the reports): beside the selected evaluation of that set.

        ``checkpoint-<step>/eval/<set>-silent/`` for a checkpoint (step 0: the base model, evaluated before
        training), ``final/<set>-silent/`` for a final model that was evaluated in ``final/`` (no checkpoint at its
        step), and ``silent/<set>/`` for ``direct``, whose real evaluation is the run directory itself. None without
        a run dir.
        """
        if self.output_dir is None or self.predictions is None:
            return None
        out = Path(self.output_dir)
        if self.direct:
            return out / DIRECT_SILENT_DIR / name
        if self.predictions.parent == out:  # the final model's predictions, copied from final/test/
            return out / FINAL_DIR / f"{name}-silent"
        return self.predictions.parent.with_name(f"{name}-silent")  # eval/test -> eval/<set>-silent

    @property
    def silent_dir(self) -> Path | None:
        """The silent-audio control of the MMAU test-mini evaluation (:meth:`silent_dir_of`)."""
        return self.silent_dir_of("test")

    @property
    def silent_metrics_path(self) -> Path | None:
        """The silent-audio control's ``metrics.json`` (see :attr:`silent_dir`)."""
        return self.silent_dir / METRICS_FILE if self.silent_dir is not None else None


@dataclass
class Selection:
    """The chosen checkpoint per (experiment, seed), the experiments with no usable run, and what was left out."""

    profile: str
    rule: str
    chosen: dict[str, list[SelectedCheckpoint]]  # experiment -> one per seed, by seed
    missing: list[str]
    notes: list[str] = field(default_factory=list)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the runs picked (rows of the runs table)
    include_adhoc: bool = False
    model: str | None = None  # the model of every run selected (the profile's own unless --model said another)

    @property
    def seeds(self) -> list[int]:
        return sorted({c.seed for runs in self.chosen.values() for c in runs})


class MissingRunsError(Exception):
    """Some experiments have no usable run; the message names them and the commands that produce them."""

    def __init__(self, missing: Sequence[str], message: str):
        super().__init__(message)
        self.missing = list(missing)


# --------------------------------------------------------------------------------------------------------------
# Runs


def _config(run: Mapping[str, Any]) -> dict[str, Any]:
    config = run.get("config")
    return config if isinstance(config, dict) else {}


def run_profile(run: Mapping[str, Any]) -> str | None:
    """The profile a run used: ``config.profile``, else the profile tag (the second tag our trackers write)."""
    profile = _config(run).get("profile")
    if isinstance(profile, str):
        return profile
    tags = tuple(run.get("tags") or ())
    return tags[1] if len(tags) > 1 else None


def run_model(run: Mapping[str, Any], profile: str) -> str | None:
    """The model a run used (``config.profile_model``); a run whose config does not say: ``profile``'s own."""
    model = _config(run).get("profile_model")
    if isinstance(model, str):
        return model
    from experiments.profiles import PROFILES

    return PROFILES[profile].model if profile in PROFILES else None


def wanted_model(profile: str, model: str | None) -> str | None:
    """The model whose runs a report uses: ``model`` (``--model``), else the profile's own."""
    from experiments.profiles import PROFILES

    return model if model is not None else (PROFILES[profile].model if profile in PROFILES else None)


def model_flag(profile: str, model: str | None) -> str:
    """`` --model M`` for commands that name another model than the profile's own, else empty."""
    wanted = wanted_model(profile, model)
    from experiments.profiles import PROFILES

    return "" if profile in PROFILES and wanted == PROFILES[profile].model else f" --model {wanted}"


def run_experiment(run: Mapping[str, Any]) -> str | None:
    """The experiment a run ran: ``config.experiment.name``, else its W&B group (the suite's default group; a run
    started with ``WANDB_RUN_GROUP`` has another group but the same experiment)."""
    experiment = _config(run).get("experiment")
    name = experiment.get("name") if isinstance(experiment, dict) else None
    return name if isinstance(name, str) else run.get("group")


def run_seed(run: Mapping[str, Any]) -> int | None:
    seed = _config(run).get("seed")
    return int(seed) if isinstance(seed, (int, float)) and not isinstance(seed, bool) else None


def run_adhoc_reasons(run: Mapping[str, Any]) -> list[str]:
    """Why a run is ad hoc (not the registered experiment as it stands); empty for a canonical run.

    The config's ``adhoc_reasons`` when it lists any, else what marks the run: ``adhoc`` (``--set`` overrides),
    ``canonical: false``, or the ``adhoc`` tag.
    """
    config = _config(run)
    reasons = config.get("adhoc_reasons")
    if isinstance(reasons, (list, tuple)) and reasons:
        return [str(r) for r in reasons]
    if config.get("adhoc"):
        return ["--set overrides"]
    if config.get("canonical") is False:
        return ["not canonical"]
    if "adhoc" in tuple(run.get("tags") or ()):
        return ["tagged adhoc"]
    return []


def run_is_adhoc(run: Mapping[str, Any]) -> bool:
    return bool(run_adhoc_reasons(run))


def run_output_dir(run: Mapping[str, Any]) -> str | None:
    """The run directory the run wrote (``config.output_dir``), or None when its config does not say."""
    output_dir = _config(run).get("output_dir")
    return str(output_dir) if isinstance(output_dir, str) and output_dir else None


def run_method(run: Mapping[str, Any]) -> str | None:
    experiment = _config(run).get("experiment")
    return experiment.get("method") if isinstance(experiment, dict) else None


def _last_logged(run: Mapping[str, Any]) -> float:
    summary = run.get("summary")
    value = summary.get("_timestamp") if isinstance(summary, dict) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def _describe(run: Mapping[str, Any]) -> str:
    return f"run {run['run_id']} ({run.get('name') or 'unnamed'})"


def pick_runs(
    tables: RunTables, profile: str, experiments: Sequence[str] = TABLE2_EXPERIMENTS, *, include_adhoc: bool = False,
    model: str | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:  # fmt: skip
    """The latest finished, non-ad-hoc run per (experiment, seed) of ``profile`` on ``model`` (None: the profile's
    own), and notes on the runs left out. Runs of another model are never candidates: one row, one model.

    "Latest" is by the summary's ``_timestamp`` (the time of the run's last logged row), which both the offline
    reader and the W&B service provide; runs without one count as oldest, then the table order decides. With
    ``include_adhoc`` ad hoc runs are candidates too (the latest finished run wins).
    Returns experiment -> run rows (dicts of the runs table) sorted by seed, for the experiments that have any.
    """
    runs = tables.runs
    wanted = wanted_model(profile, model)
    picked: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    for experiment in experiments:
        candidates = [
            (position, row)
            for position, row in enumerate(runs.to_dict("records"))
            if run_experiment(row) == experiment and run_profile(row) == profile and run_model(row, profile) == wanted
        ]
        by_seed: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for position, row in candidates:
            seed = run_seed(row)
            if seed is None:
                notes.append(f"{experiment}: ignored {_describe(row)}: no seed in its config")
                continue
            by_seed.setdefault(seed, []).append((position, row))
        chosen: list[dict[str, Any]] = []
        for seed in sorted(by_seed):
            group = sorted(by_seed[seed], key=lambda pr: (_last_logged(pr[1]), pr[0]))
            usable = [
                row for _, row in group
                if row.get("state") == "finished" and (include_adhoc or not run_is_adhoc(row))
            ]  # fmt: skip
            best = usable[-1] if usable else None
            if best is not None:
                chosen.append(best)
            for _, row in group:
                if row is best:
                    continue
                if run_is_adhoc(row) and not include_adhoc:
                    reasons = run_adhoc_reasons(row)
                    reason = "ad hoc settings (--set overrides)" if reasons == ["--set overrides"] else (
                        f"ad hoc ({'; '.join(reasons)})")  # fmt: skip
                elif row.get("state") != "finished":
                    reason = f"state {row.get('state')!r}, not finished"
                else:
                    reason = f"superseded by the later run {best['run_id']}" if best else "not usable"
                notes.append(f"{experiment} seed {seed}: ignored {_describe(row)}: {reason}")
        if chosen:
            picked[experiment] = chosen
    return picked, notes


# --------------------------------------------------------------------------------------------------------------
# Checkpoints


def last_per_step(rows: pd.DataFrame, step: str = STEP_KEY) -> pd.DataFrame:
    """One row per value of the ``step`` column, the last in ``rows``' order (logging order), sorted by step.

    A resumed run may log a step again (training rows after the resumed checkpoint, an evaluation logged again), and
    the final model's evaluation repeats the last save's step: the last row logged for a step is the one that counts.
    """
    return rows.drop_duplicates(step, keep="last").sort_values(step, kind="stable")


def eval_rows(tables: RunTables, run_id: str) -> pd.DataFrame:
    """The evaluation rows of one run, one per step (the last logged) in step order: ``step`` plus the test and
    validation accuracy columns."""
    history = tables.history[tables.history["run_id"] == run_id]
    if TEST_KEYS["avg"] not in history.columns or STEP_KEY not in history.columns:
        return pd.DataFrame(columns=["step", *TEST_KEYS.values(), VAL_KEY])
    history = history.sort_values("_step", kind="stable")
    rows = history[history[TEST_KEYS["avg"]].notna() & history[STEP_KEY].notna()]
    rows = last_per_step(rows.assign(**{STEP_KEY: rows[STEP_KEY].astype(int)}))
    out = pd.DataFrame({"step": rows[STEP_KEY].to_numpy()})
    for key in [*TEST_KEYS.values(), VAL_KEY, *other_set_keys(rows.columns)]:
        out[key] = rows[key].to_numpy(dtype=float) if key in rows.columns else math.nan
    return out


def other_set_keys(columns: Sequence[str]) -> list[str]:
    """The accuracy keys ``eval/<set>/<column>`` of the benchmarks beside MMAU test-mini (e.g. ``eval/mmar/avg``),
    in column order: every key of an evaluation set other than ``test`` and ``val``, less the format rate."""
    out = []
    for key in columns:
        parts = str(key).split("/")
        if len(parts) == 3 and parts[0] == "eval" and parts[1] not in ("test", "val") and parts[2] != "format_rate":
            if not parts[1].endswith("-silent"):
                out.append(str(key))
    return out


def other_sets(rows: pd.DataFrame, pos: int) -> dict[str, dict[str, float | None]]:
    """``{set: {column: accuracy}}`` of the other benchmarks at row ``pos`` (sets with no average there left out)."""
    found: dict[str, dict[str, float | None]] = {}
    for key in other_set_keys(rows.columns):
        _, name, column = key.split("/")
        found.setdefault(name, {})[column] = _value(rows[key].iloc[pos])
    return {name: cols for name, cols in found.items() if cols.get("avg") is not None}


def select_step(rows: pd.DataFrame, rule: str) -> tuple[int, str, str]:
    """The position in ``rows`` (from :func:`eval_rows`) that ``rule`` selects, the rule applied, and a note.

    A run with a single evaluation (``direct``) gives it whatever the rule. ``best-val`` on a run that logged no
    validation accuracy falls back to ``final`` and says so in the note.
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; valid: {', '.join(SELECTION_RULES)}")
    if rows.empty:
        raise ValueError("no evaluation rows to select from")
    if len(rows) == 1:
        return 0, "only evaluation", ""
    if rule == "best-val" and rows[VAL_KEY].isna().all():
        return len(rows) - 1, "final", "no validation accuracy logged: fell back to the final model"
    if rule == "final":
        return len(rows) - 1, rule, ""
    key = VAL_KEY if rule == "best-val" else TEST_KEYS["avg"]
    scored = [
        (-float(v), int(step), pos)
        for pos, (step, v) in enumerate(zip(rows["step"], rows[key], strict=True))
        if v == v
    ]
    return min(scored)[2], rule, ""


def predictions_path(output_dir: str | None, step: int, *, direct: bool, is_last: bool) -> Path | None:
    """Where the test predictions of ``step`` were saved (see the module docstring of experiments/training.py)."""
    if not output_dir:
        return None
    out = Path(output_dir)
    if direct:
        return out / PREDICTIONS_FILE
    checkpoint = out / checkpoint_dir(step) / "eval" / "test" / PREDICTIONS_FILE
    if is_last and not checkpoint.exists():
        return out / PREDICTIONS_FILE  # the final model's evaluation, copied to the run directory
    return checkpoint


def benchmark_version(run: Mapping[str, Any], predictions: Path | None) -> str:
    """The run's benchmark version: summary ``benchmark_version``, else ``benchmark.version`` of a metrics.json."""
    summary = run.get("summary")
    version = summary.get("benchmark_version") if isinstance(summary, dict) else None
    if isinstance(version, str) and version:
        return version
    output_dir = run_output_dir(run)
    candidates = [predictions.with_name(METRICS_FILE)] if predictions else []
    candidates += [Path(output_dir) / METRICS_FILE] if output_dir else []
    for path in candidates:
        metrics = read_metrics(path)
        benchmark = metrics.get("benchmark") if isinstance(metrics, dict) else None
        if isinstance(benchmark, dict) and benchmark.get("version"):
            return str(benchmark["version"])
    return UNKNOWN_VERSION


def read_metrics(path: Path) -> dict[str, Any] | str:
    """An evaluation's ``metrics.json`` as a dict, or why it cannot be used (absent, unreadable, not an object).

    The one reader of the evaluator's metrics files for the reports (benchmark version, decoding provenance).
    """
    if not path.is_file():
        return f"{path} not found"
    try:
        metrics = read_json(path)
    except DataError as exc:
        return f"{path} not readable ({exc})"
    return metrics if isinstance(metrics, dict) else f"{path} is not a JSON object"


def left_out_run_dirs(
    tables: RunTables, profile: str, experiments: Sequence[str], chosen: Mapping[str, Sequence[Any]], root: Path,
    model: str | None = None,
) -> list[str]:  # fmt: skip
    """Notes on this machine's canonical run directories (``<root>/<profile>/<experiment>/seed<N>/``) that the
    report leaves out although no W&B run explains why: a run killed before W&B flushed anything, or never synced.

    (A run that W&B holds but the selection passed over is named by :func:`pick_runs` already.)"""
    from experiments.profiles import model_slug

    known = set(tables.runs["run_id"].astype(str)) if "run_id" in tables.runs else set()
    study = root / profile if not model_flag(profile, model) else root / profile / model_slug(str(model))
    notes = []
    for experiment in experiments:
        seeds = {int(c.seed) for c in chosen.get(experiment, [])}
        for run_dir in sorted((study / experiment).glob("seed*")):
            seed = run_dir.name.removeprefix("seed")
            if not seed.isdigit() or int(seed) in seeds or not (run_dir / EXPERIMENT_FILE).exists():
                continue
            id_file = run_dir / RUN_ID_FILE
            run_id = id_file.read_text().strip() if id_file.exists() else None
            if run_id in known:
                continue
            state = "complete" if (run_dir / COMPLETE_MARKER).exists() else "not complete (killed or running)"
            why = (f"its W&B run {run_id} is not among the runs read (killed before W&B flushed anything, or not "
                   "synced)" if run_id else "it has no W&B run (stopped before W&B started)")  # fmt: skip
            notes.append(f"{experiment} seed {seed}: left out: the run directory {run_dir} is {state}, and {why}; "
                         f"`python -m experiments run {experiment} --profile {profile}{model_flag(profile, model)} "
                         f"--seed {seed} --resume` "
                         "finishes it and logs its whole record to W&B")  # fmt: skip
    return notes


def _value(x: float) -> float | None:
    return None if x != x else float(x)


def select_checkpoints(
    tables: RunTables,
    profile: str = "toy",
    rule: str = DEFAULT_RULE,
    experiments: Sequence[str] = TABLE2_EXPERIMENTS,
    *,
    include_adhoc: bool = False,
    run_dirs: Path | None = None,
    model: str | None = None,
) -> Selection:
    """Pick the runs of ``profile`` (see :func:`pick_runs`) and one checkpoint of each by ``rule``. With ``run_dirs``
    (the outputs root on this machine), the notes also name each run directory left out (:func:`left_out_run_dirs`)."""
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; valid: {', '.join(SELECTION_RULES)}")
    picked, notes = pick_runs(tables, profile, experiments, include_adhoc=include_adhoc, model=model)
    chosen: dict[str, list[SelectedCheckpoint]] = {}
    for experiment, runs in picked.items():
        for run in runs:
            rows = eval_rows(tables, run["run_id"])
            if rows.empty:
                notes.append(f"{experiment}: ignored {_describe(run)}: no evaluation rows (eval/test/avg) logged")
                continue
            pos, applied, rule_note = select_step(rows, rule)
            step = int(rows["step"].iloc[pos])
            direct = run_method(run) == "direct" or experiment == "direct"
            output_dir = run_output_dir(run)
            predictions = predictions_path(output_dir, step, direct=direct, is_last=pos == len(rows) - 1)
            if rule_note:
                notes.append(f"{experiment}: {_describe(run)}: {rule_note}")
            chosen.setdefault(experiment, []).append(
                SelectedCheckpoint(
                    experiment=experiment, seed=int(run_seed(run) or 0), run_id=str(run["run_id"]),
                    run_name=str(run.get("name") or ""), profile=profile, rule=applied, step=step,
                    test={task: _value(rows[key].iloc[pos]) for task, key in TEST_KEYS.items()},
                    val_avg=_value(rows[VAL_KEY].iloc[pos]), benchmark_version=benchmark_version(run, predictions),
                    predictions=predictions, n_evals=len(rows), rule_note=rule_note, output_dir=output_dir,
                    adhoc_reasons=tuple(run_adhoc_reasons(run)), direct=direct, others=other_sets(rows, pos),
                )
            )  # fmt: skip
    if run_dirs is not None:
        notes += left_out_run_dirs(tables, profile, experiments, chosen, Path(run_dirs), model=model)
    missing = [e for e in experiments if e not in chosen]
    return Selection(profile=profile, rule=rule, chosen=chosen, missing=missing, notes=notes, runs=picked,
                     include_adhoc=include_adhoc, model=wanted_model(profile, model))  # fmt: skip


def missing_message(
    missing: Sequence[str], profile: str, seeds: Sequence[int] = (0,), what: str = "Table 2", *,
    include_adhoc: bool = False, model: str | None = None,
) -> str:  # fmt: skip
    """What is missing and the commands that produce it (the message of the exit-2 failures)."""
    flag = model_flag(profile, model)
    seeds = list(seeds) or [0]
    seed_list = " ".join(str(s) for s in seeds)
    kind = "finished" if include_adhoc else "finished, non-ad-hoc"
    lines = [
        f"no {kind} runs of profile {profile!r}{f' on model {model!r}' if flag else ''} for the {what} "
        f"experiment(s): {', '.join(missing)}.",
        "Produce them with:",
        f"  make paper PROFILE={profile}"
        + (f" MODEL={model}" if flag else "")
        + (f' SEEDS="{seed_list}"' if seeds != [0] else ""),
        "or one at a time:",
    ]
    lines += [f"  python -m experiments run {name} --profile {profile}{flag} --seed {s}" for name in missing
              for s in seeds]  # fmt: skip
    return "\n".join(lines)
