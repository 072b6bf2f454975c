"""Resolve an experiment on a profile and run it; evaluate any checkpoint on any MMAU-format benchmark.

Used by ``python -m experiments run NAME`` and ``python -m experiments eval``; see ``experiments/__main__.py``.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from data.io import write_json_atomic
from experiments.profiles import Profile, get_profile, output_root
from experiments.registry import get_experiment
from experiments.spec import Experiment, apply_overrides


@dataclasses.dataclass(frozen=True)
class ResolvedRun:
    experiment: Experiment
    profile: Profile
    seed: int
    output_dir: Path
    adhoc: bool  # True when --set overrides changed the registered experiment

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.to_dict(),
            "profile": self.profile.name,
            "profile_model": self.profile.model,
            "seed": self.seed,
            "adhoc": self.adhoc,
            "output_dir": str(self.output_dir),
        }


def resolve(
    name: str, profile: str = "toy", seed: int = 0, output_dir: str | Path | None = None,
    overrides: dict[str, str] | None = None,
) -> ResolvedRun:  # fmt: skip
    prof = get_profile(profile)
    exp = apply_overrides(prof.scale(get_experiment(name)), overrides or {})
    out = Path(output_dir) if output_dir else output_root() / profile / name / f"seed{seed}"
    return ResolvedRun(exp, prof, seed, out, adhoc=bool(overrides))


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


COMPLETE_MARKER = "run_complete.json"


def run(resolved: ResolvedRun, *, resume: bool = False) -> dict[str, Any]:
    """Run one resolved experiment; returns the final test metrics."""
    from data.distributed import barrier, is_main, rank_and_size

    exp = resolved.experiment
    if is_main():
        resolved.output_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(resolved.output_dir / "experiment.json", resolved.to_dict())
        if rank_and_size()[1] > 1:  # build the cached world and models once, before the other processes use them
            resolved.profile.data()
            resolved.profile.resolve_model()
    barrier()
    seed_everything(resolved.seed)
    if exp.method == "direct":
        metrics = run_direct(resolved)
    else:
        from experiments.training import run_training

        metrics = run_training(resolved, resume=resume)
    if is_main():
        write_json_atomic(resolved.output_dir / COMPLETE_MARKER, {"accuracy": metrics["accuracy"]})
    return metrics


def is_complete(resolved: ResolvedRun) -> bool:
    """A run is complete when it wrote its marker and its configuration is the one asked for now."""
    marker, written = resolved.output_dir / COMPLETE_MARKER, resolved.output_dir / "experiment.json"
    if not (marker.exists() and written.exists()):
        return False
    import json

    return json.loads(written.read_text()) == json.loads(json.dumps(resolved.to_dict()))


def table2_experiments() -> list[str]:
    from experiments.registry import REGISTRY

    return [name for name, exp in REGISTRY.items() if exp.table2_row]


def run_table2(profile: str, seeds: list[int]) -> list[ResolvedRun]:
    """Run every Table 2 experiment of ``profile`` for each seed, skipping runs that are already complete."""
    import time

    names = table2_experiments()
    done: list[ResolvedRun] = []
    todo = [(n, s) for s in seeds for n in names]
    for k, (name, seed) in enumerate(todo, 1):
        resolved = resolve(name, profile, seed)
        head = f"[{k}/{len(todo)}] {name} (profile {profile}, seed {seed})"
        if is_complete(resolved):
            print(f"{head}: complete, skipped ({resolved.output_dir})")
        else:
            print(f"{head}: running -> {resolved.output_dir}", flush=True)
            start = time.time()
            from experiments.training import latest_checkpoint

            run(resolved, resume=latest_checkpoint(resolved.output_dir) is not None)
            print(f"{head}: done in {time.time() - start:.0f} s", flush=True)
        done.append(resolved)
    return done


def run_direct(resolved: ResolvedRun) -> dict[str, Any]:
    """Zero-shot evaluation of the profile's base model on its test set, logged as a W&B run (Table 2's row)."""
    from experiments.tracking import tracked_run
    from trainers.checkpoint_eval import eval_log_row

    data = resolved.profile.data()
    model_path = resolved.profile.resolve_model()
    with tracked_run(resolved, extra_config={"base_model": model_path}) as tracker:
        metrics = evaluate_checkpoint(
            model_path, data.test_json, data.test_audio_dir, resolved.output_dir,
            prompt_id=resolved.experiment.prompt, eval_spec=resolved.experiment.eval,
            version_label=resolved.profile.benchmark_label,
        )  # fmt: skip
        tracker.log({"train/global_step": 0, **eval_log_row("test", metrics)})
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
) -> dict[str, Any]:
    """Load ``model`` (unless ``loaded`` gives model and processor) and evaluate it on an MMAU-format file."""
    from data.evaluate import DecodingConfig, evaluate
    from data.mmau import load_mmau
    from data.models import load_model_and_processor
    from experiments.spec import EvalSpec

    spec = eval_spec or EvalSpec()
    bench = load_mmau(benchmark_json, audio_dir, allow_missing_audio=allow_missing_audio, version_label=version_label)
    model_obj, processor = loaded if loaded is not None else load_model_and_processor(model)
    benchmark = bench.describe()
    return evaluate(
        model_obj, processor, bench.items, out_dir,
        prompt_id=prompt_id,
        decoding=DecodingConfig(batch_size=spec.batch_size, max_new_tokens=spec.max_new_tokens,
                                static_cache=spec.static_cache),
        model_name=str(model), benchmark=benchmark, audio_mode=spec.audio_mode, progress=progress,
    )  # fmt: skip
