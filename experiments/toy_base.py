"""The toy profile's base model: the tiny Qwen2-Audio after a short instruction tuning (a "toy Instruct").

**Shipped**: the default base of each family lives in the repository (``assets/toy-bases/<name>/``, checked by
checksum; :mod:`experiments.shipped_base`), and every machine starts from it (:func:`toy_base_model`), since a base
built on another CPU is another base. A base of other settings (another seed, for the robustness table) is built on
first use and cached under ``outputs/cache/toy-instruct-<hash>``, the hash covering everything that defines it (the
code of the tiny model, the toy world, the instruct corpus, the prompts and the SFT trainer, and the settings
below), so a change rebuilds it and an unchanged tree reuses it. See ``data/toy/instruct.py`` for what it is taught
and why.

The build is **gated**: after training, the base answers the toy test split zero-shot with Prompt <2> (the
``direct`` experiment's prompt and decoding), with real and with silent audio, and ``base_report.json`` records the
answer-format rate, the listed-option rate (answers naming one of the offered choices), test accuracy, chance and
silent-audio accuracy. A base that answers in the format less than 95% of the time, or names a listed option less
than 90% of the time, gives no usable start for the study (GRPO's rewards need both): the build then fails with the
report and is not cached.

    python -m experiments.toy_base                       # the shipped base's report
    python -m experiments.toy_base --rebuild             # build from this code (minutes on 2 CPU cores), compare
    python -m experiments.toy_base --ship                # ... and replace the shipped base with the build
    python -m experiments.toy_base --seed 1 --cache /tmp/b   # another seed, elsewhere (the robustness table)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers.trainer_callback import TrainerCallback

from data.io import build_once, sources_digest, write_json_atomic
from data.schema import DataError

MIN_FORMAT_RATE = 95.0  # % of outputs with <answer>...</answer>
MIN_LISTED_RATE = 90.0  # % of answers that name one of the offered choices
# Every module whose code shapes the base (with the world's own, data.toy.WORLD_MODULES, and the family's tiny twin's).
BASE_MODULES = (
    "models.loading",
    "data.prompts",
    "data.schema",
    "data.toy.instruct",
    "trainers.sft",
    "experiments.trainer_arguments",
    "experiments.toy_base",
)
REPORT = "base_report.json"


@dataclass(frozen=True)
class ToyBaseSpec:
    n_items: int = 4000
    steps: int = 3000
    batch: int = 16
    learning_rate: float = 2e-3
    caption_fraction: float = 0.3
    own_options_fraction: float = 0.75
    own_correct: float = 0.0
    shifted_fraction: float = 0.5
    known_sub_categories: tuple[str, ...] = ("noise_colour", "note_height")
    seed: int = 0
    family: str = "qwen2-audio"  # whose tiny twin is tuned (models.registry.FAMILIES): toy-instruct, toy-qwen2.5-omni


class BaseGateError(DataError):
    """The built base failed the gate (format or listed-option rate too low)."""


def _fingerprint(spec: ToyBaseSpec) -> str:
    from data.toy import WORLD_MODULES
    from models.registry import FAMILIES

    modules = (*WORLD_MODULES, *BASE_MODULES, *FAMILIES[spec.family].tiny_sources())
    return sources_digest(modules, extra=json.dumps(asdict(spec), sort_keys=True))[:12]


def base_name(family: str) -> str:
    """The local model name of the toy base on ``family``'s tiny twin (experiments.profiles.TOY_BASES)."""
    return "toy-instruct" if family == "qwen2-audio" else f"toy-{family}"


def base_dir(cache_root: str | Path, spec: ToyBaseSpec | None = None) -> Path:
    spec = spec or ToyBaseSpec()
    return Path(cache_root) / f"{base_name(spec.family)}-{_fingerprint(spec)}"


def ensure_toy_base(cache_root: str | Path, spec: ToyBaseSpec | None = None) -> Path:
    """Path of the cached toy instruct base, building (and gating) it first if needed."""
    spec = spec or ToyBaseSpec()
    path = base_dir(cache_root, spec)
    if (path / "model.safetensors").exists():
        return path
    from data.toy import ensure_world
    from models.registry import FAMILIES
    from models.tiny import ensure_tiny_model

    tiny = ensure_tiny_model(cache_root, seed=spec.seed, family=FAMILIES[spec.family])
    world = ensure_world(cache_root)
    print(f"building the toy instruct base model on the tiny {FAMILIES[spec.family].title} (one-time, cached in "
          f"{path})")  # fmt: skip

    def build(partial: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            report = _train(tiny, Path(tmp), partial, spec)
            report.update(zero_shot_report(partial, world, partial / "zero_shot"))
        report["gate"] = gate(report)
        write_json_atomic(partial / REPORT, report)
        if not report["gate"]["passed"]:
            kept = failed_builds_dir(cache_root) / f"{path.name}.{REPORT}"
            write_json_atomic(kept, report)
            raise BaseGateError(
                f"the toy base built in {path} failed its gate: {'; '.join(report['gate']['failures'])}.\n"
                f"report: {kept}\n"
                "fix: the base must answer in the format and name a listed option; give the instruct corpus more "
                "steps or more multiple-choice items (ToyBaseSpec in experiments/toy_base.py), then rebuild"
            )

    return build_once(path, build, done="model.safetensors")


_NOTED: set[str] = set()


def shipped_base(spec: ToyBaseSpec, root: Path | None = None) -> Path | None:
    """The shipped base of ``spec`` (the same settings, family included), or None if none is shipped."""
    from experiments.shipped_base import read_manifest, shipped_dir

    path = shipped_dir(base_name(spec.family), root)
    manifest = read_manifest(path)
    return path if manifest is not None and manifest["spec"] == json.loads(json.dumps(asdict(spec))) else None


def toy_base_model(cache_root: str | Path, spec: ToyBaseSpec | None = None, root: Path | None = None) -> Path:
    """The base the toy profile starts from: the shipped one of ``spec`` (checked against its checksums), else the
    cached build (:func:`ensure_toy_base`). A shipped base built by other code than this tree's is used as shipped,
    and said once: ``--rebuild`` shows whether this code builds the same."""
    from experiments.shipped_base import check_shipped

    spec = spec or ToyBaseSpec()
    path = shipped_base(spec, root)
    if path is None:
        return ensure_toy_base(cache_root, spec)
    manifest = check_shipped(path)
    now = _fingerprint(spec)
    if manifest["fingerprint"] != now and str(path) not in _NOTED:
        _NOTED.add(str(path))
        print(f"note: the shipped toy base {path.name} was built by other code (fingerprint {manifest['fingerprint']}, "
              f"this tree {now}); it is used as shipped. `python -m experiments.toy_base --family {spec.family} "
              "--rebuild` builds one from this code, `--ship` replaces the shipped one")  # fmt: skip
    return path


def failed_builds_dir(cache_root: str | Path) -> Path:
    """Where a failed build's report is kept (the failed model itself is not cached)."""
    out = Path(cache_root) / "failed-builds"
    out.mkdir(parents=True, exist_ok=True)
    return out


def gate(report: dict[str, Any]) -> dict[str, Any]:
    failures = []
    if report["format_rate"] < MIN_FORMAT_RATE:
        failures.append(f"answer-format rate {report['format_rate']:.1f}% < {MIN_FORMAT_RATE:.0f}%")
    if report["listed_option_rate"] < MIN_LISTED_RATE:
        failures.append(f"listed-option rate {report['listed_option_rate']:.1f}% < {MIN_LISTED_RATE:.0f}%")
    return {"min_format_rate": MIN_FORMAT_RATE, "min_listed_option_rate": MIN_LISTED_RATE,
            "passed": not failures, "failures": failures}  # fmt: skip


def _train(tiny: Path, tmp: Path, out: Path, spec: ToyBaseSpec) -> dict:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from data.toy.instruct import instruct_items, prompt_for, thought_for
    from experiments.spec import TrainSpec
    from experiments.trainer_arguments import sft_arguments
    from models.loading import load_model_and_processor
    from models.saving import save_model
    from trainers.sft import build_sft_trainer

    model, processor = load_model_and_processor(tiny, device="cpu")
    items = instruct_items(tmp / "instruct", spec.n_items, seed=spec.seed, caption_fraction=spec.caption_fraction,
                           own_options_fraction=spec.own_options_fraction, own_correct=spec.own_correct,
                           shifted_fraction=spec.shifted_fraction, known=spec.known_sub_categories)  # fmt: skip
    train = TrainSpec(learning_rate=spec.learning_rate, epochs=None, max_steps=spec.steps,
                      per_device_batch=spec.batch, save_every=0, warmup_steps=0.05, logging_steps=10)  # fmt: skip
    args = sft_arguments(train, output_dir=str(tmp / "run"), seed=spec.seed)
    trainer = build_sft_trainer(model, processor, items, args=args, prompt_id=prompt_for, thought=thought_for)
    # One bar for the build, with the running loss on it; no log dict per logging step.
    for callback in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(callback)
    trainer.add_callback(_BuildBar())
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


class _BuildBar(TrainerCallback):
    """One tqdm bar over the build's steps, the last logged loss as its postfix."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, desc="toy base", unit="step")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.bar.close()


def zero_shot_report(model_dir: Path, world: Path, out: Path) -> dict[str, Any]:
    """The base on the toy test split, zero-shot with Prompt <2>, with real and silent audio."""
    from data.benchmark import load_benchmark
    from data.toy import chance_accuracy
    from models.evaluate import DecodingConfig, evaluate
    from models.loading import load_model_and_processor

    model, processor = load_model_and_processor(model_dir, device="cpu")
    items = load_benchmark(world / "test" / "mmau-test-mini.json", world / "test", version_label="toy").items
    decoding = DecodingConfig(max_new_tokens=32, batch_size=64)  # the toy profile's direct evaluation
    kw = dict(prompt_id="p2", decoding=decoding, progress=False, print_table=False)
    real = evaluate(model, processor, items, out / "real", **kw)
    silent = evaluate(model, processor, items, out / "silent", audio_mode="silent", **kw)
    return {
        "zero_shot": "toy test split, Prompt <2>, greedy, 32 new tokens",
        "n_items": len(items),
        "format_rate": real["format_rate"],
        "listed_option_rate": real["listed_option_rate"],
        "test_accuracy": real["accuracy"]["avg"],
        "test_accuracy_per_task": {t: a for t, a in real["accuracy"].items() if t != "avg"},
        "chance": round(100.0 * chance_accuracy(items)["overall"], 2),
        "silent_accuracy": silent["accuracy"]["avg"],
        "silent_format_rate": silent["format_rate"],
        "silent_listed_option_rate": silent["listed_option_rate"],
    }


def main(argv: list[str] | None = None) -> int:
    from experiments.paths import output_root

    ap = argparse.ArgumentParser(prog="python -m experiments.toy_base", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="base seed: tiny model init, corpus, data order (default 0)")
    ap.add_argument("--cache", default=None, help="cache folder (default: outputs/cache)")
    ap.add_argument("--family", default="qwen2-audio", help="whose tiny twin to tune: qwen2-audio (default), "
                    "qwen2.5-omni, qwen3-omni")  # fmt: skip
    ap.add_argument("--rebuild", action="store_true", help="build from this code even where a base is shipped, and "
                    "say whether the build is bit-identical to the shipped one")  # fmt: skip
    ap.add_argument("--ship", action="store_true", help="rebuild (or reuse the cached build) and replace the shipped "
                    "base of these settings with it (assets/toy-bases/)")  # fmt: skip
    args = ap.parse_args(argv)
    from data.io import sha256_file
    from experiments.shipped_base import check_shipped, ship, shipped_dir

    cache = Path(args.cache) if args.cache else output_root() / "cache"
    spec = ToyBaseSpec(seed=args.seed, family=args.family)
    shipped = shipped_base(spec)
    try:
        base = (
            ensure_toy_base(cache, spec)
            if args.rebuild or args.ship or shipped is None
            else toy_base_model(cache, spec)
        )
    except BaseGateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(json.loads((base / REPORT).read_text()), indent=2))
    if shipped is not None and base != shipped:
        same = sha256_file(base / "model.safetensors") == check_shipped(shipped)["files"]["model.safetensors"]
        print(f"the build is {'bit-identical to' if same else 'NOT the same as'} the shipped base {shipped}")
    if args.ship:
        where = ship(base, base_name(spec.family), spec=asdict(spec), fingerprint=_fingerprint(spec))
        print(f"shipped: {where} (commit it to share it)")
    elif shipped is None and shipped_dir(base_name(spec.family)).exists():
        print(f"note: these settings are not the shipped base's ({shipped_dir(base_name(spec.family))})")
    print(f"toy instruct base: {base if not args.ship else shipped_dir(base_name(spec.family))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
