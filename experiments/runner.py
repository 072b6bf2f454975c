"""Resolve an experiment on a profile and run it; evaluate any checkpoint on any MMAU-format benchmark.

Used by ``python -m experiments run NAME`` and ``python -m experiments eval``; see ``experiments/__main__.py``.

:func:`validate` checks a resolved run before anything is loaded or created (the run directory's lock,
``experiment.json``, the W&B run): every field (``experiments.spec.check_fields``), then the trainer's arguments,
built exactly as the run builds them, so TRL's and transformers' own argument errors surface before step 0.
:func:`run_dtype` is the one rule for a run's compute dtype, used by the trainer and by every evaluation of the run.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from data.io import read_json, write_json_atomic
from data.schema import DataError
from experiments.profiles import Profile, get_profile, output_root
from experiments.registry import get_experiment
from experiments.spec import (
    EvalSpec,
    Experiment,
    ExperimentError,
    TrainSpec,
    apply_overrides,
    check_fields,
    differing_fields,
    field_value,
)

if TYPE_CHECKING:
    from models.evaluate import DecodingConfig


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
    def from_dict(cls, data: dict[str, Any], source: Path | str = "experiment.json") -> ResolvedRun:
        try:
            reasons = data.get("adhoc_reasons")
            if reasons is None:  # written before adhoc_reasons existed
                reasons = ["ad hoc (recorded by an earlier version)"] if data.get("adhoc") else []
            return cls(Experiment.from_dict(data["experiment"]), get_profile(data["profile"]), int(data["seed"]),
                       Path(data["output_dir"]), tuple(reasons))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{source}: not a run configuration this version can read ({e!r}); start a new run with "
                            "--output-dir, or resume it with the version of the suite that wrote it") from None  # fmt: skip


def canonical_dir(name: str, profile: str, seed: int) -> Path:
    """Where a canonical run lives; a run anywhere else is ad hoc."""
    return output_root() / profile / name / f"seed{seed}"


def resolve(
    name: str, profile: str = "toy", seed: int = 0, output_dir: str | Path | None = None,
    overrides: dict[str, str] | None = None,
) -> ResolvedRun:  # fmt: skip
    prof = get_profile(profile)
    exp = apply_overrides(prof.scale(get_experiment(name)), overrides or {})
    canonical = canonical_dir(name, profile, seed)
    out = Path(output_dir) if output_dir else canonical
    reasons = [f"--set {k}={v}" for k, v in (overrides or {}).items()]
    if out.resolve() != canonical.resolve():
        reasons.append(f"--output-dir {out} (canonical: {canonical})")
    return ResolvedRun(exp, prof, seed, out, tuple(reasons))


def stored_run(run_dir: Path) -> ResolvedRun | None:
    path = Path(run_dir) / "experiment.json"
    return ResolvedRun.from_dict(read_json(path), path) if path.exists() else None


def for_resume(asked: ResolvedRun, overrides: dict[str, str] | None = None) -> ResolvedRun:
    """The run to resume: the stored ``experiment.json`` of ``asked.output_dir`` (provenance is kept).

    A ``--set`` that disagrees with the stored configuration is refused, naming the field and both values; so is
    another experiment, profile or seed. Without a stored configuration the run starts as asked.
    """
    stored = stored_run(asked.output_dir)
    if stored is None:
        return asked
    where = asked.output_dir / "experiment.json"
    for what, mine, theirs in (("experiment", asked.experiment.name, stored.experiment.name),
                               ("profile", asked.profile.name, stored.profile.name),
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
        from experiments.training import check_trainer_arguments

        check_trainer_arguments(resolved)


def run_dtype(train: TrainSpec | None) -> Literal["float32", "bfloat16"]:
    """The one compute dtype of a run: its training (``train.bf16``; None: bf16 on CUDA) and every evaluation of it,
    step 0 included; a run without training (``direct``, ``python -m experiments eval``): bf16 on CUDA."""
    import torch

    bf16 = train.bf16 if train is not None and train.bf16 is not None else torch.cuda.is_available()
    return "bfloat16" if bf16 else "float32"


def run_deterministic(train: TrainSpec | None) -> bool:
    """Whether a training run uses deterministic algorithms (``train.deterministic``; None: on CPU only)."""
    import torch

    if train is not None and train.deterministic is not None:
        return train.deterministic
    return not torch.cuda.is_available()


def compute_settings(train: TrainSpec | None) -> dict[str, Any]:
    """What decides a training run's bits besides its configuration: written to the run directory
    (``compute_settings.json``) and the W&B config. The same settings on the same machine give the same weights."""
    import platform

    import torch

    return {
        "deterministic_algorithms": run_deterministic(train),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.machine()})",
    }


@contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(enabled)`` for the block, the previous setting restored afterwards.

    Ops that have a deterministic implementation take it (on 2 CPU threads, some GRPO kernel's reduction order
    varied between runs without it; ``tests/test_training_runs.py``); an op without one raises instead of silently
    varying.
    """
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    if enabled and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS refuses deterministic mode without it
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def load_dtype(exp: Experiment) -> Any:
    """The torch dtype a training run loads its base model in: trained weights stay fp32 (bf16 autocast; pure bf16
    weights lose small updates to rounding); with LoRA the base is frozen, so a bf16 run loads it in bf16 (peft keeps
    the adapters themselves in fp32). None for a run without training (``direct``: the loader's default)."""
    import torch

    if exp.train is None:
        return None
    return torch.bfloat16 if exp.lora is not None and run_dtype(exp.train) == "bfloat16" else torch.float32


def decoding_config(spec: EvalSpec, compute_dtype: str | None, *, valid_frame_encoder: bool = True) -> DecodingConfig:
    """The evaluator's :class:`~models.evaluate.DecodingConfig` from an experiment's evaluation settings (every
    evaluation of the suite builds it here)."""
    from models.evaluate import DecodingConfig

    return DecodingConfig(batch_size=spec.batch_size, max_new_tokens=spec.max_new_tokens, static_cache=spec.static_cache,
                          valid_frame_encoder=valid_frame_encoder, source=spec.decoding,
                          compute_dtype=compute_dtype)  # fmt: skip


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


COMPLETE_MARKER = "run_complete.json"


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
            if resume and marker.exists() and (out / "metrics.json").exists():
                print(f"{out}: the run is already complete ({COMPLETE_MARKER}); nothing to do")
                return read_json(out / "metrics.json")
            marker.unlink(missing_ok=True)  # a run in progress is never complete, whatever ran here before
            write_json_atomic(out / "experiment.json", resolved.to_dict())
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
    changed += [what for what in ("profile", "seed") if getattr(asked, what) != getattr(stored, what)]
    if stored.adhoc and not asked.adhoc:
        changed.append(f"ad hoc ({'; '.join(stored.adhoc_reasons)})")
    if changed:
        raise DataError(f"{asked.output_dir} holds a run of another configuration (differs in {', '.join(changed)}); "
                        "move or delete that directory to run the registered experiment there")  # fmt: skip


def table2_experiments() -> list[str]:
    from experiments.registry import REGISTRY

    return [name for name, exp in REGISTRY.items() if exp.table2_row]


def run_table2(profile: str, seeds: list[int]) -> list[ResolvedRun]:
    """Run every Table 2 experiment of ``profile`` for each seed, skipping runs that are already complete.

    Every run of the table is checked (its directory, :func:`validate`) before the first one starts.
    """
    import time

    plan: list[tuple[str, ResolvedRun, ResolvedRun, bool]] = []  # head, as registered, as it runs, resumed
    todo = [(n, s) for s in seeds for n in table2_experiments()]
    for k, (name, seed) in enumerate(todo, 1):
        resolved = resolve(name, profile, seed)
        stored = stored_run(resolved.output_dir)
        if stored is not None:
            check_same_run(resolved, stored)
        runs_as = resolved if stored is None else dataclasses.replace(stored, output_dir=resolved.output_dir)
        validate(runs_as)
        plan.append(
            (f"[{k}/{len(todo)}] {name} (profile {profile}, seed {seed})", resolved, runs_as, stored is not None)
        )
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
    """Zero-shot evaluation of the profile's base model on its test set, logged as a W&B run (Table 2's row)."""
    from data.distributed import is_main
    from data.io import append_jsonl
    from experiments.record import record_rows
    from experiments.tracking import tracked_run
    from trainers.checkpoint_eval import eval_log_row
    from trainers.record_files import EVAL_LOG, STEP_KEY

    data = resolved.profile.data()
    model_path = resolved.profile.resolve_model()
    with tracked_run(resolved, resume=resume, extra_config={"base_model": model_path}) as tracker:
        metrics = evaluate_checkpoint(
            model_path, data.test_json, data.test_audio_dir, resolved.output_dir,
            prompt_id=resolved.experiment.prompt, eval_spec=resolved.experiment.eval,
            version_label=resolved.profile.benchmark_label, compute_dtype=run_dtype(resolved.experiment.train),
        )  # fmt: skip
        row = {STEP_KEY: 0, **eval_log_row("test", metrics)}
        # One process records (a resumed run's row is already on disk, and re-logged if W&B lost it).
        if is_main() and row not in record_rows(resolved.output_dir):
            append_jsonl(resolved.output_dir / EVAL_LOG, [{"step": 0, "dir": str(resolved.output_dir), **row}])
            tracker.log(row)
        summary = {"final/" + k.removeprefix("eval/"): v for k, v in eval_log_row("test", metrics).items()}
        tracker.summary({**summary, "final/step": 0, "benchmark_version": metrics["benchmark"]["version"]})
    return metrics


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
) -> dict[str, Any]:
    """Load ``model`` (unless ``loaded`` gives model and processor) and evaluate it on an MMAU-format file.

    ``compute_dtype``: :func:`run_dtype` of the run the evaluation belongs to (None: the evaluator's default).
    """
    from data.mmau import load_mmau
    from models.evaluate import evaluate
    from models.loading import load_model_and_processor

    spec = eval_spec or EvalSpec()
    bench = load_mmau(benchmark_json, audio_dir, allow_missing_audio=allow_missing_audio, version_label=version_label)
    model_obj, processor = loaded if loaded is not None else load_model_and_processor(model)
    benchmark = bench.describe()
    return evaluate(
        model_obj, processor, bench.items, out_dir,
        prompt_id=prompt_id,
        decoding=decoding_config(spec, compute_dtype),
        model_name=str(model), benchmark=benchmark, audio_mode=spec.audio_mode, progress=progress,
    )  # fmt: skip
