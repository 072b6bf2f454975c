"""The toy profile's base model: the tiny Qwen2-Audio after a short instruction tuning (a "toy Instruct").

Built on first use and cached under ``outputs/cache/toy-instruct-<hash>``, the hash covering everything that
defines it (the code of the tiny model, the toy world and the instruct corpus, and the settings below), so a change
rebuilds it and an unchanged tree reuses it. See ``data/toy_instruct.py`` for what it is taught and why. A report
(``base_report.json``) records its training loss and its zero-shot behaviour on the toy test split: answer-format
rate, how often it names a listed option, and accuracy against chance.

    python -m experiments.toy_base          # build (about 3 minutes on 2 CPU cores) and print the report
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from data.io import build_once, write_json_atomic


@dataclass(frozen=True)
class ToyBaseSpec:
    n_items: int = 4000
    steps: int = 1500
    batch: int = 16
    learning_rate: float = 2e-3
    primer_fraction: float = 0.15
    primer_correct: float = 0.5
    seed: int = 0


def _fingerprint(spec: ToyBaseSpec) -> str:
    import data.models
    import data.toy
    import data.toy_instruct
    import trainers.sft

    h = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    for module in (data.models, data.toy, data.toy_instruct, trainers.sft):
        h.update(Path(module.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:12]


def ensure_toy_base(cache_root: str | Path, spec: ToyBaseSpec | None = None) -> Path:
    """Path of the cached toy instruct base, building it first if needed."""
    spec = spec or ToyBaseSpec()
    path = Path(cache_root) / f"toy-instruct-{_fingerprint(spec)}"
    if (path / "model.safetensors").exists():
        return path
    from data.models import ensure_tiny_model

    tiny = ensure_tiny_model(cache_root, seed=spec.seed)
    print(f"building the toy instruct base model (one-time, cached in {path})")

    def build(partial: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            report = _train(tiny, Path(tmp), partial, spec)
        write_json_atomic(partial / "base_report.json", report)

    return build_once(path, build, done="model.safetensors")


def _train(tiny: Path, tmp: Path, out: Path, spec: ToyBaseSpec) -> dict:
    from data.models import load_model_and_processor, save_model
    from data.toy_instruct import instruct_items, prompt_for, thought_for
    from experiments.spec import TrainSpec
    from trainers.sft import build_sft_trainer, sft_arguments

    model, processor = load_model_and_processor(tiny, device="cpu")
    items = instruct_items(tmp / "instruct", spec.n_items, seed=spec.seed, primer_fraction=spec.primer_fraction,
                           primer_correct=spec.primer_correct)  # fmt: skip
    train = TrainSpec(learning_rate=spec.learning_rate, epochs=None, max_steps=spec.steps,
                      per_device_batch=spec.batch, save_every=0, warmup_steps=0.05)  # fmt: skip
    args = sft_arguments(output_dir=str(tmp / "run"), train=train, seed=spec.seed, report_to=[], bf16=False)
    trainer = build_sft_trainer(model, processor, items, args=args, prompt_id=prompt_for, thought=thought_for)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    model.config.use_cache = True
    save_model(model, processor, out)
    tenth = max(1, len(losses) // 10)
    return {
        "spec": asdict(spec),
        "loss_first_tenth": sum(losses[:tenth]) / tenth,
        "loss_last_tenth": sum(losses[-tenth:]) / tenth,
    }


if __name__ == "__main__":
    from experiments.paths import output_root

    base = ensure_toy_base(output_root() / "cache")
    print(json.dumps(json.loads((base / "base_report.json").read_text()), indent=2))
    print(f"toy instruct base: {base}")
