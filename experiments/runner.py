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


def run(resolved: ResolvedRun) -> dict[str, Any]:
    """Run one resolved experiment; returns the final test metrics."""
    exp = resolved.experiment
    resolved.output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(resolved.output_dir / "experiment.json", resolved.to_dict())
    seed_everything(resolved.seed)
    if exp.method == "direct":
        return run_direct(resolved)
    raise NotImplementedError(
        f"experiment {exp.name!r} uses method {exp.method!r}, whose trainer is not in this version of the suite"
    )


def run_direct(resolved: ResolvedRun) -> dict[str, Any]:
    """Zero-shot evaluation of the profile's base model on its test set."""
    data = resolved.profile.data()
    model_path = resolved.profile.resolve_model()
    return evaluate_checkpoint(
        model_path, data.test_json, data.test_audio_dir, resolved.output_dir,
        prompt_id=resolved.experiment.prompt, eval_spec=resolved.experiment.eval,
        version_label=resolved.profile.benchmark_label,
    )  # fmt: skip


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
    benchmark = {
        "path": str(benchmark_json), "version": bench.version, "sha256": bench.sha256,
        "n_items": len(bench.items), "missing_audio_ids": bench.missing_audio_ids,
    }  # fmt: skip
    return evaluate(
        model_obj, processor, bench.items, out_dir,
        prompt_id=prompt_id,
        decoding=DecodingConfig(batch_size=spec.batch_size, max_new_tokens=spec.max_new_tokens),
        model_name=str(model), benchmark=benchmark, audio_mode=spec.audio_mode, progress=progress,
    )  # fmt: skip
