"""The listening control of every Table 2 row: its selected checkpoint evaluated with every clip replaced by silence.

    python -m controls.silent [--wandb-dir outputs/wandb | --wandb ENTITY/PROJECT] [--profile toy]
                              [--select best-val|final|best-test] [--include-adhoc]

A score that stays the same without the audio was earned from the text alone (a prior over the answers), not by
listening. For each run and checkpoint that Table 2 uses (the same runs and selection rule, through
:func:`analysis.select.select_checkpoints`: pass the ``--select`` and ``--include-adhoc`` the table gets), this
evaluates the selected model on each benchmark the run was judged on (MMAU test-mini, and MMAR or the toy's mixed
test where the run has it) with ``audio_mode="silent"`` (each clip replaced by silence
of the same length; ``data/evaluate.py``), decoding exactly as the run's own evaluations did: the prompt, evaluation
settings and compute dtype of the run's stored ``experiment.json`` (:func:`experiments.runner.decoding_config`,
:func:`experiments.runner.run_dtype`), the weights loaded in the dtype the run held them in. It writes into the run
directory, beside the selected evaluation (:attr:`analysis.select.SelectedCheckpoint.silent_dir`):

- ``checkpoint-<step>/eval/<set>-silent/`` for a checkpoint (step 0 is the base model, evaluated before training);
- ``final/<set>-silent/`` for a final model evaluated in ``final/`` (its weights: ``final_adapters/`` or ``merged/``);
- ``silent/<set>/`` for ``direct`` (the profile's base model, as the run's W&B config ``base_model`` names it);

with ``<set>`` ``test`` (MMAU test-mini) or ``mmar``.

Each evaluation shows a progress bar, then one summary line; one already complete (its ``metrics.json`` is there) is
skipped, and one cut short resumes where it stopped (the evaluator's own resumption). A LoRA checkpoint loads its
base model and merges the adapters (:func:`models.loading.load_model_and_processor`); a checkpoint saved without its
processor takes the base model's (training never changes it).

Runs whose run directory is not on this machine (read from the W&B service, made elsewhere) are listed and skipped.
Everything else that stops an evaluation (no ``experiment.json``, a run directory written by another run, missing
weights, a test set on this machine other than the one the run was evaluated on) is reported for every run before
any model is loaded, each naming the run directory and the fix; then the command exits with status 1 and evaluates
nothing. Exit status 2: no Table 2 run of the profile at all.

The reports read these evaluations back with :func:`analysis.silent.read_silent`. This is the one part of the
suite after training that loads models: :mod:`analysis` only reads runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.crosscheck import OTHER_RUN, CrossCheck, check_runs
from analysis.paper_numbers import PAPER_ROWS, TABLE2_EXPERIMENTS
from analysis.runs import RunTables
from analysis.select import (
    DEFAULT_RULE,
    SelectedCheckpoint,
    Selection,
    missing_message,
    read_metrics,
    select_checkpoints,
)
from analysis.sources import report_parser, run_report
from data.io import read_json
from data.run_files import FINAL_ADAPTERS_DIR, MERGED_DIR, METRICS_FILE, checkpoint_dir
from data.schema import DataError

# Files by which a model directory holds its processor (transformers 5 writes processor_config.json; older
# versions preprocessor_config.json).
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
# Files by which a checkpoint directory holds weights (full model, sharded full model, LoRA adapters).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_config.json")


# --------------------------------------------------------------------------------------------------------------
# Planning: every selected checkpoint's model, run configuration and output directory, checked before any load


@dataclass
class SilentJob:
    """One silent evaluation to run (or found complete)."""

    checkpoint: SelectedCheckpoint
    out_dir: Path
    model: str  # the model directory (or hub id) to load
    base_model: str  # the run's base model: where a checkpoint without processor files takes its processor
    resolved: Any  # the run's stored experiment.json (experiments.runner.ResolvedRun)
    done: bool = False  # its metrics.json is already there
    set_name: str = "test"  # the evaluation set it controls (test: MMAU test-mini; mmar: MMAR or the toy's mix)

    @property
    def head(self) -> str:
        return _head(self.checkpoint) + ("" if self.set_name == "test" else f", {self.set_name}")

    @property
    def real_avg(self) -> float | None:
        """The real (with audio) accuracy of the evaluation it controls, as logged."""
        values = self.checkpoint.test if self.set_name == "test" else self.checkpoint.others.get(self.set_name, {})
        return values.get("avg")


def _head(c: SelectedCheckpoint) -> str:
    """How every line about one selected checkpoint starts: its Table 2 row, seed, run and step."""
    return f"{PAPER_ROWS[c.experiment].label}, seed {c.seed} (run {c.run_id}, step {c.step})"


@dataclass
class Plan:
    jobs: list[SilentJob] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # runs not on this machine: listed, not evaluated
    problems: list[str] = field(default_factory=list)  # anything else that stops an evaluation: nothing runs
    # (profile, set) -> its loaded benchmark, or why it cannot be loaded (pending jobs only)
    benchmarks: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def pending(self) -> list[SilentJob]:
        return [job for job in self.jobs if not job.done]


def _looks_local(name: str) -> bool:
    """A local path rather than a hub id (``org/name``): absolute, relative with a dot, or more than one slash."""
    return name.startswith((".", "/", "~")) or name.count("/") != 1


def _model_of(job_dir: Path, c: SelectedCheckpoint, base: str) -> tuple[str | None, str]:
    """The model to load for checkpoint ``c`` of the run in ``job_dir``, or None and why not (with the fix)."""
    if c.direct or c.step == 0:
        return base, ""
    candidates = [job_dir / checkpoint_dir(c.step)]
    if c.predictions is not None and c.predictions.parent == job_dir:  # a final model evaluated in final/
        candidates += [job_dir / FINAL_ADAPTERS_DIR, job_dir / MERGED_DIR]
    for path in candidates:
        if any((path / name).is_file() for name in WEIGHT_FILES):
            return str(path), ""
    where = ", ".join(f"{p.name}/" for p in candidates)
    return None, (f"the weights of step {c.step} are not in {job_dir} (looked for {', '.join(WEIGHT_FILES)} in "
                  f"{where}); a checkpoint whose weights were deleted or never saved cannot be evaluated. Select "
                  "another checkpoint (--select) or rerun the run")  # fmt: skip


def plan_silent(selection: Selection, check: CrossCheck, runs_by_id: Mapping[str, Mapping[str, Any]]) -> Plan:
    """Where each selected checkpoint's silent evaluation goes, which model it loads and how the run decoded; runs
    not on this machine are listed in ``skipped``, everything else that is wrong in ``problems``."""
    from experiments.runner import stored_run

    plan = Plan()
    for experiment in TABLE2_EXPERIMENTS:
        for c in selection.chosen.get(experiment, []):
            head = _head(c)
            run = check.run(c.run_id)
            if run is None or not run.checked:
                if run is not None and any(p.kind == OTHER_RUN for p in run.problems):
                    plan.problems += [f"{head}: {p.message()}; rerun it, or read the runs from the machine that holds "
                                      "its own directory" for p in run.problems if p.kind == OTHER_RUN]  # fmt: skip
                else:
                    plan.skipped.append(f"{head}: {run.reason if run is not None else 'not checked'} "
                                        f"({c.output_dir or 'no run dir in its W&B config'})")  # fmt: skip
                continue
            run_dir = Path(str(c.output_dir))
            try:
                resolved = stored_run(run_dir)
            except DataError as exc:
                plan.problems.append(f"{head}: {exc}")
                continue
            if resolved is None:
                plan.problems.append(f"{head}: {run_dir} has no experiment.json, so how the run decoded is unknown; "
                                     "rerun it with this version of the suite (python -m experiments run "
                                     f"{experiment} --profile {c.profile} --seed {c.seed})")  # fmt: skip
                continue
            stored = (resolved.experiment.name, resolved.profile.name, resolved.seed)
            if stored != (experiment, c.profile, c.seed):
                plan.problems.append(f"{head}: {run_dir}/experiment.json holds experiment {stored[0]!r}, profile "
                                     f"{stored[1]!r}, seed {stored[2]}, not the run's {experiment!r}, {c.profile!r}, "
                                     f"{c.seed}: another run wrote the directory; rerun this one")  # fmt: skip
                continue
            if selection.model is not None and resolved.profile.model != selection.model:
                plan.problems.append(f"{head}: {run_dir}/experiment.json holds model {resolved.profile.model!r}, not "
                                     f"the run's {selection.model!r}: another run wrote the directory; rerun this "
                                     "one")  # fmt: skip
                continue
            config = runs_by_id.get(c.run_id, {}).get("config") or {}
            base = config.get("base_model") if isinstance(config, dict) else None
            if not isinstance(base, str) or not base:
                plan.problems.append(f"{head}: the run's W&B config names no base_model; rerun it with this version "
                                     "of the suite")  # fmt: skip
                continue
            model, why = _model_of(run_dir, c, base)
            if model is None:
                plan.problems.append(f"{head}: {why}")
                continue
            adapter = Path(model) / "adapter_config.json"
            needed = [(model, "its model")] + ([(read_json(adapter).get("base_model_name_or_path", ""),
                                                 f"the base model in {adapter}")] if adapter.is_file() else [])  # fmt: skip
            absent = [f"{what} {name}" for name, what in needed if _looks_local(name) and not Path(name).exists()]
            if absent:
                plan.problems.append(f"{head}: {'; '.join(absent)} not on this machine; build or copy it there (the "
                                     "toy base: any run of the toy profile builds it) or run this on the machine "
                                     "that holds it")  # fmt: skip
                continue
            for name in ("test", *c.others):  # MMAU test-mini, then every other benchmark the run was judged on
                out_dir = c.silent_dir_of(name)
                assert out_dir is not None  # a checked run has a run dir, hence a selected evaluation in it
                plan.jobs.append(SilentJob(c, out_dir, model, base, resolved, (out_dir / METRICS_FILE).is_file(),
                                           set_name=name))  # fmt: skip
    return plan


# --------------------------------------------------------------------------------------------------------------
# Evaluating


def load_model(model: str, base_model: str, dtype: Any) -> tuple[Any, Any]:
    """Model and processor of a checkpoint (full weights or LoRA adapters), or of a base model.

    :func:`models.loading.load_model_and_processor` reads both from one directory; a checkpoint saved without its
    processor gets a temporary view of itself with the base model's processor saved beside its (linked) files.
    """
    from models.loading import load_model_and_processor

    path = Path(model)
    if not path.is_dir() or any((path / name).is_file() for name in PROCESSOR_FILES):
        return load_model_and_processor(model, dtype=dtype)
    from transformers import AutoProcessor

    with tempfile.TemporaryDirectory(prefix="silent-view-") as tmp:
        # The processor is saved before the links exist, so nothing is ever written through a link into the run.
        AutoProcessor.from_pretrained(base_model, trust_remote_code=False).save_pretrained(tmp)
        for item in path.iterdir():
            if not (Path(tmp) / item.name).exists():
                (Path(tmp) / item.name).symlink_to(item.resolve())
        return load_model_and_processor(tmp, dtype=dtype)


def _load_set(profile: Any, set_name: str) -> Any:
    """The loaded benchmark that ``profile`` evaluates as ``set_name``, or why it cannot be loaded."""
    try:
        sources = {b.set_name: b for b in profile.data().benchmarks}
        if set_name not in sources:
            return f"profile {profile.name!r} has no data for it here"
        return sources[set_name].load()
    except (DataError, FileNotFoundError) as exc:
        return str(exc)


def load_benchmarks(plan: Plan) -> None:
    """Load each benchmark of each profile with pending jobs once (into ``plan.benchmarks``) and check that it is
    the one each run was evaluated on; a mismatch, or one that cannot be loaded, goes into ``plan.problems``."""
    loaded = plan.benchmarks
    for job in plan.pending:
        profile = job.resolved.profile
        key = (profile.name, job.set_name)
        if key not in loaded:
            loaded[key] = _load_set(profile, job.set_name)
        bench = loaded[key]
        if isinstance(bench, str):
            plan.problems.append(f"{job.head}: the {job.set_name} set of profile {profile.name!r} cannot be loaded: "
                                 f"{bench}")  # fmt: skip
            continue
        real_dir = job.checkpoint.set_dir(job.set_name)
        real = read_metrics(real_dir / METRICS_FILE) if real_dir is not None else {}
        recorded = real.get("benchmark") if isinstance(real, dict) else None
        recorded = recorded if isinstance(recorded, dict) else {"version": job.checkpoint.benchmark_version}
        here = bench.describe()
        by = "sha256" if recorded.get("sha256") else "version"
        if recorded.get(by) != here[by]:
            plan.problems.append(
                f"{job.head}: the run was evaluated on test set {recorded.get('version')} ({by} "
                f"{recorded.get(by)}), but profile {profile.name!r} gives {here['version']} ({here[by]}, "
                f"{here['path']}) on this machine: a silent control on other items controls nothing. Run this where "
                f"that test set is, or rerun the run ({job.checkpoint.output_dir})"
            )  # fmt: skip


def run_jobs(plan: Plan) -> list[dict[str, Any]]:
    """Evaluate each pending job of ``plan`` (one model in memory at a time), one summary line each; returns their
    metrics."""
    from experiments.compute import decoding_config, load_dtype, run_dtype
    from models.evaluate import FeatureCache, evaluate

    caches: dict[tuple[str, str], FeatureCache] = {}  # per profile and set: each item featurised once (silent)
    loaded_key, loaded = None, None
    results = []
    for job in plan.pending:
        exp, dtype = job.resolved.experiment, load_dtype(job.resolved.experiment)
        if (job.model, dtype) != loaded_key:  # consecutive jobs on one model (e.g. a base) load it once
            loaded = None  # drop the previous model before loading the next: one in memory at a time
            loaded, loaded_key = load_model(job.model, job.base_model, dtype), (job.model, dtype)
        model, processor = loaded
        key = (job.resolved.profile.name, job.set_name)
        bench = plan.benchmarks[key]
        # The decoding of the run's own evaluations (experiments/training.py, run_direct), from its experiment.json.
        valid_frames = exp.train.valid_frame_encoder if exp.train is not None else True
        decoding = decoding_config(exp.eval, run_dtype(exp.train), valid_frame_encoder=valid_frames)
        start = time.perf_counter()
        metrics = evaluate(
            model, processor, bench.items, job.out_dir, prompt_id=exp.prompt, decoding=decoding,
            model_name=job.model, benchmark=bench.describe(), audio_mode="silent", progress=True, print_table=False,
            keep_bar=False, cache=caches.setdefault(key, FeatureCache()),
        )  # fmt: skip
        print(f"{job.head}: {_summary(job, metrics['accuracy']['avg'])} in {time.perf_counter() - start:.0f} s -> "
              f"{job.out_dir}", flush=True)  # fmt: skip
        results.append(metrics)
    return results


def _summary(job: SilentJob, silent: float | None) -> str:
    real = job.real_avg
    text = f"silent audio {silent:.2f}%" if silent is not None else "silent audio n/a"
    if real is not None and silent is not None:
        text += f" (with audio {real:.2f}%, listening gain {real - silent:+.2f})"
    return text


def silent_controls(
    tables: RunTables, profile: str, rule: str = DEFAULT_RULE, *, include_adhoc: bool = False, model: str | None = None
) -> tuple[Selection, Plan]:
    """Select Table 2's checkpoints of ``profile`` by ``rule`` and plan their silent evaluations (no model loaded)."""
    selection = select_checkpoints(tables, profile, rule, TABLE2_EXPERIMENTS, include_adhoc=include_adhoc, model=model)
    check = check_runs(tables, selection.runs)
    runs_by_id = {str(r["run_id"]): r for rows in selection.runs.values() for r in rows}
    plan = plan_silent(selection, check, runs_by_id)
    if not plan.problems:
        load_benchmarks(plan)  # the test sets are loaded (the toy world built) only when all else is in order
    return selection, plan


def main(argv: list[str] | None = None) -> int:
    parser = report_parser("python -m controls.silent", __doc__, report=False,
                           select_help="the checkpoint of each run, as Table 2 selects it (default best-val)")  # fmt: skip
    args = parser.parse_args(argv)
    return run_report(args, TABLE2_EXPERIMENTS, lambda tables, _source: _evaluate(args, tables))


def _evaluate(args: argparse.Namespace, tables: RunTables) -> int:
    selection, plan = silent_controls(tables, args.profile, args.select, include_adhoc=args.include_adhoc,
                                      model=args.model)  # fmt: skip
    if not selection.chosen:
        print(f"error: {missing_message(selection.missing, args.profile, include_adhoc=args.include_adhoc, model=args.model)}",
              file=sys.stderr)  # fmt: skip
        return 2
    for note in selection.notes:
        print(f"note: {note}", file=sys.stderr)
    if selection.missing:
        print(f"note: no runs of {', '.join(selection.missing)} yet: nothing to evaluate for them", file=sys.stderr)
    for line in plan.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if plan.problems:
        print(f"error: {len(plan.problems)} silent evaluation(s) cannot run; nothing was evaluated:", file=sys.stderr)
        for problem in plan.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    for job in plan.jobs:
        if job.done:
            metrics = read_metrics(job.out_dir / METRICS_FILE)
            accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
            silent = accuracy.get("avg") if isinstance(accuracy, dict) else None
            print(f"{job.head}: already evaluated, {_summary(job, silent)} ({job.out_dir})")
    from trainers.console import show_each_warning_once

    show_each_warning_once()  # the libraries' repeated warnings once, the pure noise never (trainers/console.py)
    evaluated = len(run_jobs(plan))  # a DataError (e.g. a partial evaluation there with other settings): exit 1
    print(
        f"silent audio, profile {args.profile}, selection {args.select}: {evaluated} evaluated, "
        f"{len(plan.jobs) - evaluated} already there, {len(plan.skipped)} skipped (not on this machine)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
