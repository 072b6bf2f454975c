"""Resolve an experiment on a profile and run it; evaluate any checkpoint on any MMAU-format benchmark.

Used by ``python -m experiments run NAME`` and ``python -m experiments eval``; see ``experiments/__main__.py``.

:func:`validate` checks a resolved run before anything is loaded or created (the run directory's lock,
``experiment.json``, the W&B run): every field (``experiments.spec.check_fields``), then the trainer's arguments,
built exactly as the run builds them, so TRL's and transformers' own argument errors surface before step 0.
How a run computes (dtype, determinism, seeding, decoding) is ``experiments/compute.py``'s: one rule for the trainer
and for every evaluation of the run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from data.io import read_json, write_json_atomic
from data.run_files import COMPLETE_MARKER, EXPERIMENT_FILE, METRICS_FILE
from data.schema import DataError
from experiments.compute import decoding_config, run_dtype, seed_everything
from experiments.paths import output_root
from experiments.profiles import Profile, check_model_name, get_profile
from experiments.registry import get_experiment
from experiments.spec import (
    EvalSpec,
    Experiment,
    ExperimentError,
    apply_overrides,
    check_fields,
    differing_fields,
    field_value,
)


@dataclasses.dataclass(frozen=True)
class ResolvedRun:
    experiment: Experiment
    profile: Profile
    seed: int
    output_dir: Path
    # Why the run is ad hoc (--set overrides, a directory other than its canonical one); empty for a canonical run.
    adhoc_reasons: tuple[str, ...] = ()

    @property
    def adhoc(self) -> bool:
        return bool(self.adhoc_reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.to_dict(),
            "profile": self.profile.name,
            "profile_model": self.profile.model,
            "seed": self.seed,
            "adhoc": self.adhoc,
            "canonical": not self.adhoc,
            "adhoc_reasons": list(self.adhoc_reasons),
            "output_dir": str(self.output_dir),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | str = EXPERIMENT_FILE) -> ResolvedRun:
        try:
            reasons = data.get("adhoc_reasons")
            if reasons is None:  # written before adhoc_reasons existed
                reasons = ["ad hoc (recorded by an earlier version)"] if data.get("adhoc") else []
            # profile_model: absent in runs written before --model existed, which all ran the profile's own model.
            profile = get_profile(data["profile"]).with_model(data.get("profile_model"))
            return cls(Experiment.from_dict(data["experiment"]), profile, int(data["seed"]), Path(data["output_dir"]),
                       tuple(reasons))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{source}: not a run configuration this version can read ({e!r}); start a new run with "
                            "--output-dir, or resume it with the version of the suite that wrote it") from None  # fmt: skip


def study_dir(profile: Profile) -> Path:
    """Where the canonical runs of a profile on its model live: ``outputs/<profile>/``, or
    ``outputs/<profile>/<model>/`` for another model than the profile's own (``--model``)."""
    root = output_root() / profile.name
    return root if profile.model_label is None else root / profile.model_label


def canonical_dir(name: str, profile: Profile, seed: int) -> Path:
    """Where a canonical run lives; a run anywhere else is ad hoc."""
    return study_dir(profile) / name / f"seed{seed}"


def resolve(
    name: str, profile: str = "toy", seed: int = 0, output_dir: str | Path | None = None,
    overrides: dict[str, str] | None = None, model: str | None = None,
) -> ResolvedRun:  # fmt: skip
    """``name`` on ``profile`` with ``seed``; ``model``: another model than the profile's own (hub id, checkpoint
    directory or local model name), part of the run's identity (its directory, W&B name and tags, Table 2 row)."""
    prof = get_profile(profile).with_model(model)
    if model is not None:
        check_model_name(model)
    exp = apply_overrides(prof.scale(get_experiment(name)), overrides or {})
    canonical = canonical_dir(name, prof, seed)
    out = Path(output_dir) if output_dir else canonical
    reasons = [f"--set {k}={v}" for k, v in (overrides or {}).items()]
    if out.resolve() != canonical.resolve():
        reasons.append(f"--output-dir {out} (canonical: {canonical})")
    return ResolvedRun(exp, prof, seed, out, tuple(reasons))


def stored_run(run_dir: Path) -> ResolvedRun | None:
    path = Path(run_dir) / EXPERIMENT_FILE
    return ResolvedRun.from_dict(read_json(path), path) if path.exists() else None


def for_resume(asked: ResolvedRun, overrides: dict[str, str] | None = None) -> ResolvedRun:
    """The run to resume: the stored ``experiment.json`` of ``asked.output_dir`` (provenance is kept).

    A ``--set`` that disagrees with the stored configuration is refused, naming the field and both values; so is
    another experiment, profile, model or seed. Without a stored configuration the run starts as asked.
    """
    stored = stored_run(asked.output_dir)
    if stored is None:
        return asked
    where = asked.output_dir / EXPERIMENT_FILE
    for what, mine, theirs in (("experiment", asked.experiment.name, stored.experiment.name),
                               ("profile", asked.profile.name, stored.profile.name),
                               ("model", asked.profile.model, stored.profile.model),
                               ("seed", asked.seed, stored.seed)):  # fmt: skip
        if mine != theirs:
            raise DataError(f"--resume: {where} holds {what} {theirs!r}, not {mine!r}; resume it as stored or start "
                            "a new run elsewhere with --output-dir")  # fmt: skip
    for key in overrides or {}:
        mine, theirs = field_value(asked.experiment, key), field_value(stored.experiment, key)
        if mine != theirs:
            raise DataError(f"--resume: --set {key}={mine!r} conflicts with the stored run ({key}={theirs!r} in "
                            f"{where}); drop the --set to resume the run as it was started, or start a new run "
                            "with --output-dir")  # fmt: skip
    changed = differing_fields(asked.experiment, stored.experiment)
    if changed:
        print(f"--resume: continuing with the configuration stored in {where} (it differs from the registry's in "
              f"{', '.join(changed)})")  # fmt: skip
    return dataclasses.replace(stored, output_dir=asked.output_dir)


def validate(resolved: ResolvedRun) -> None:
    """Refuse a run that cannot run as configured, before any model, lock, ``experiment.json`` or W&B run exists.

    Raises :class:`~experiments.spec.ExperimentError` naming each bad field, its value and what is accepted.
    """
    from experiments.tracking import wandb_env_tags

    if not 0 <= resolved.seed < 2**32:  # numpy's range; the command line refuses it earlier (seed_arg)
        raise ExperimentError(f"seed {resolved.seed}: give a whole number from 0 to {2**32 - 1}")
    check_fields(resolved.experiment)
    wandb_env_tags()  # a bad WANDB_TAGS names the variable now, not after the model is loaded
    if resolved.experiment.method in ("sft", "grpo"):
        from experiments.trainer_arguments import check_trainer_arguments

        check_trainer_arguments(resolved)


def run(resolved: ResolvedRun, *, resume: bool = False) -> dict[str, Any]:
    """Run one resolved experiment; returns the final test metrics.

    The main process holds the run directory's lock throughout (a second writer is refused, naming this pid).
    With ``resume``, a run that already completed is left as it is.
    """
    from contextlib import ExitStack

    from data.distributed import barrier, is_main, rank_and_size
    from experiments.record import RunDirLock

    exp, out = resolved.experiment, resolved.output_dir
    validate(resolved)  # before the lock, experiment.json and the W&B run: a bad setting leaves no trace
    with ExitStack() as stack:
        if is_main():
            stack.enter_context(RunDirLock(out))
            marker = out / COMPLETE_MARKER
            if resume and marker.exists() and (out / METRICS_FILE).exists():
                print(f"{out}: the run is already complete ({COMPLETE_MARKER}); nothing to do")
                return read_json(out / METRICS_FILE)
            marker.unlink(missing_ok=True)  # a run in progress is never complete, whatever ran here before
            write_json_atomic(out / EXPERIMENT_FILE, resolved.to_dict())
            if rank_and_size()[1] > 1:  # build the cached world and models once, before the other processes use them
                resolved.profile.data()
                resolved.profile.resolve_model()
        barrier()
        seed_everything(resolved.seed)
        if exp.method == "direct":
            metrics = run_direct(resolved, resume=resume)
        else:
            from experiments.training import run_training

            metrics = run_training(resolved, resume=resume)
        if is_main():
            write_json_atomic(out / COMPLETE_MARKER, {"accuracy": metrics["accuracy"]})
    return metrics


# Fields that change how a run reports, not what it computes: a run directory differing only in them is the same
# run (runs written before train.logging_steps existed logged every step).
REPORTING_ONLY = frozenset({"train.logging_steps"})


def check_same_run(asked: ResolvedRun, stored: ResolvedRun) -> None:
    """Refuse to continue a run directory that holds another configuration than the one asked for."""
    changed = [k for k in differing_fields(asked.experiment, stored.experiment) if k not in REPORTING_ONLY]
    changed += ["profile"] if asked.profile.name != stored.profile.name else []
    changed += ["seed"] if asked.seed != stored.seed else []
    if asked.profile.model != stored.profile.model:
        changed.append(f"model ({stored.profile.model} there)")
    if stored.adhoc and not asked.adhoc:
        changed.append(f"ad hoc ({'; '.join(stored.adhoc_reasons)})")
    if changed:
        raise DataError(f"{asked.output_dir} holds a run of another configuration (differs in {', '.join(changed)}); "
                        "move or delete that directory to run the registered experiment there")  # fmt: skip


def table2_experiments() -> list[str]:
    from experiments.registry import REGISTRY

    return [name for name, exp in REGISTRY.items() if exp.table2_row]


def run_table2(profile: str, seeds: list[int], model: str | None = None) -> list[ResolvedRun]:
    """Run every Table 2 experiment of ``profile`` (on ``model``, None: the profile's own) for each seed, skipping
    runs that are already complete.

    Every run of the table is checked (its directory, :func:`validate`) before the first one starts.
    """
    import time

    plan: list[tuple[str, ResolvedRun, ResolvedRun, bool]] = []  # head, as registered, as it runs, resumed
    where = f"profile {profile}" + (f", model {model}" if model else "")
    todo = [(n, s) for s in seeds for n in table2_experiments()]
    for k, (name, seed) in enumerate(todo, 1):
        resolved = resolve(name, profile, seed, model=model)
        stored = stored_run(resolved.output_dir)
        if stored is not None:
            check_same_run(resolved, stored)
        runs_as = resolved if stored is None else dataclasses.replace(stored, output_dir=resolved.output_dir)
        validate(runs_as)
        plan.append((f"[{k}/{len(todo)}] {name} ({where}, seed {seed})", resolved, runs_as, stored is not None))
    for head, resolved, runs_as, resume in plan:
        if resume and (resolved.output_dir / COMPLETE_MARKER).exists():
            print(f"{head}: complete, skipped ({resolved.output_dir})")
            continue
        print(f"{head}: {'resuming' if resume else 'running'} -> {resolved.output_dir}", flush=True)
        start = time.time()
        run(runs_as, resume=resume)
        print(f"{head}: done in {time.time() - start:.0f} s", flush=True)
    return [resolved for _, resolved, _, _ in plan]


def run_direct(resolved: ResolvedRun, *, resume: bool = False) -> dict[str, Any]:
    """Zero-shot evaluation of the profile's base model on each benchmark of ``eval.benchmarks``, logged as a W&B
    run (Table 2's row): MMAU test-mini into the run directory itself, any other into ``<run dir>/<set>/``."""
    from data.distributed import is_main
    from data.io import append_jsonl
    from data.run_files import EVAL_LOG, STEP_KEY
    from experiments.record import record_rows
    from experiments.tracking import tracked_run
    from models.loading import load_model_and_processor
    from trainers.checkpoint_eval import eval_log_row

    data = resolved.profile.data()
    sources = data.eval_benchmarks(resolved.experiment.eval.benchmark_names)
    model_path = resolved.profile.resolve_model()
    results: dict[str, dict[str, Any]] = {}
    with tracked_run(resolved, resume=resume, extra_config={"base_model": model_path}) as tracker:
        loaded = load_model_and_processor(model_path)  # once, for every benchmark
        for source in sources:
            name = source.set_name
            results[name] = evaluate_checkpoint(
                model_path, source.json, source.audio_dir,
                resolved.output_dir if name == "test" else resolved.output_dir / name,
                prompt_id=resolved.experiment.prompt, eval_spec=resolved.experiment.eval,
                version_label=source.version_label, compute_dtype=run_dtype(resolved.experiment.train),
                benchmark=source.benchmark, loaded=loaded,
            )  # fmt: skip
        row: dict[str, Any] = {STEP_KEY: 0}
        for name, metrics in results.items():
            row.update(eval_log_row(name, metrics))
        # One process records (a resumed run's row is already on disk, and re-logged if W&B lost it).
        if is_main() and row not in record_rows(resolved.output_dir):
            append_jsonl(resolved.output_dir / EVAL_LOG, [{"step": 0, "dir": str(resolved.output_dir), **row}])
            tracker.log(row)
        summary = {"final/" + k.removeprefix("eval/"): v for k, v in row.items() if k != STEP_KEY}
        summary.update({f"benchmark_version/{n}": m["benchmark"]["version"] for n, m in results.items()})
        tracker.summary({**summary, "final/step": 0, "benchmark_version": results["test"]["benchmark"]["version"]})
    return results["test"]


def evaluate_checkpoint(
    model: str | Path,
    benchmark_json: str | Path,
    audio_dir: str | Path | None,
    out_dir: str | Path,
    *,
    prompt_id: str = "p2",
    eval_spec: Any = None,
    allow_missing_audio: bool = False,
    version_label: str | None = None,
    progress: bool = True,
    loaded: tuple[Any, Any] | None = None,
    compute_dtype: str | None = None,
    benchmark: str | None = None,
) -> dict[str, Any]:
    """Load ``model`` (unless ``loaded`` gives model and processor) and evaluate it on a benchmark question file
    (MMAU test-mini or MMAR; ``benchmark`` names it, None: recognised from the file).

    ``compute_dtype``: :func:`run_dtype` of the run the evaluation belongs to (None: the evaluator's default).
    """
    from data.benchmark import load_benchmark
    from models.evaluate import evaluate
    from models.loading import load_model_and_processor

    spec = eval_spec or EvalSpec()
    bench = load_benchmark(benchmark_json, audio_dir, allow_missing_audio=allow_missing_audio,
                           version_label=version_label, benchmark=benchmark)  # fmt: skip
    model_obj, processor = loaded if loaded is not None else load_model_and_processor(model)
    return evaluate(
        model_obj, processor, bench.items, out_dir,
        prompt_id=prompt_id,
        decoding=decoding_config(spec, compute_dtype),
        model_name=str(model), benchmark=bench.describe(), audio_mode=spec.audio_mode, progress=progress,
    )  # fmt: skip
