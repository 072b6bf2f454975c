"""Profiles: where an experiment runs (model, data, scale). The experiment says what; the profile says where.

- ``paper``: ``Qwen/Qwen2-Audio-7B-Instruct`` with AVQA and MMAU test-mini from paths you give in environment
  variables (``MMAU_JSON``, ``MMAU_AUDIO_DIR``, ``AVQA_TRAIN``, ``AVQA_VAL``, ``AVQA_AUDIO_DIR``; see README).
  The paper's settings, unchanged. Needs GPUs.
- ``toy`` (default): the toy instruct base (the tiny Qwen2-Audio after a short instruction tuning, see
  ``experiments/toy_base.py``; 2 s audio window; shipped in ``assets/toy-bases/``) on the synthetic toy world
  (``data/toy/``) and its mixed test in MMAR's shape (``data/toy/mix.py``), built on first use under
  ``outputs/cache/``. The recipe is scaled to CPU minutes (table below, also in the README).
- ``smoke``: the same code path in seconds, for tests: the *untrained* tiny model, a small toy world, a few steps.
  Its numbers mean nothing.

Toy scaling (paper -> toy), chosen so each Table 2 run takes at most 5 minutes on 2 CPU cores:

==================  ==========================  =========================================
setting             paper                       toy
==================  ==========================  =========================================
SFT                 lr 5e-6, 4 epochs, batch 4  lr 1e-3, 2 epochs, batch 32, save every 40
                    per device x 8 GPUs, save
                    every 200
GRPO                lr 1e-6, 500 steps, 1       lr 1e-3, 16 prompts x accumulation 2, save every
                    prompt x accumulation 2 x   20; Prompt <2>: 120 steps, Prompt <3>: 60 steps
                    8 GPUs, save every 100
completion length   512 (orig. 256)             Prompt <2>: 32 (orig. 16); Prompt <3>: 64 (orig. 32)
LR schedule (orig)  decay over 1000 steps       decay over twice the run's steps
evaluation          256 new tokens, Prompt <3>  32 new tokens (Prompt <3>: 64), batch 64, all val items
                    512; batch 32, 1000 val
                    items
logging             every 10 steps              every 10 steps (smoke: every step)
==================  ==========================  =========================================

Prompt <3> evaluates with at least its GRPO completion length on every profile (``experiments.spec.check_fields``
refuses less): think-then-answer outputs would otherwise be cut before their ``<answer>``.

The SFT learning rate is the best mean validation accuracy over seeds 0-2 on a small grid (2e-4 / 1e-3 / 2e-3;
docs/toy.md, "Learning rates"); full and LoRA SFT share it, as in the paper. The GRPO recipe (learning rate,
prompts per step, steps) was measured one cause at a time on validation (docs/toy.md, "A GRPO recipe that learns"):
prompts seen is what moves it. Prompt <3> runs half of Prompt <2>'s steps because its completions make each step
about 1.6 times as long, and ``make paper SEEDS="0 1 2"`` must stay within 35 minutes on 2 cores; its row is
trained on half the prompts (the table says so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from experiments.paths import output_root
from experiments.spec import Experiment

PAPER_MODEL = "Qwen/Qwen2-Audio-7B-Instruct"
# The toy instruct bases: local model name -> the family whose tiny twin it is tuned from (experiments/toy_base.py).
TOY_BASES = {"toy-instruct": "qwen2-audio", "toy-qwen2.5-omni": "qwen2.5-omni"}
LOCAL_MODELS = {
    "tiny": "the untrained tiny Qwen2-Audio",
    "tiny-qwen2.5-omni": "the untrained tiny Qwen2.5-Omni thinker",
    "tiny-qwen3-omni": "the untrained tiny Qwen3-Omni thinker",
    "toy-instruct": "the toy profile's instruct base (tiny Qwen2-Audio)",
    "toy-qwen2.5-omni": "the toy instruct base on the tiny Qwen2.5-Omni thinker",
}


def resolve_model_name(name: str) -> str:
    """A hub id or path unchanged; a local model name (:data:`LOCAL_MODELS`) -> the locally built model (built
    once, cached)."""
    cache = output_root() / "cache"
    if name in TOY_BASES:  # the shipped base of its family (experiments/shipped_base.py), else a cached build
        from experiments.toy_base import ToyBaseSpec, toy_base_model

        return str(toy_base_model(cache, ToyBaseSpec(family=TOY_BASES[name])))
    from models.tiny import TINY_MODELS, ensure_tiny_model

    if name in TINY_MODELS:
        return str(ensure_tiny_model(cache, family=TINY_MODELS[name]))
    return name


def check_model_name(name: str) -> None:
    """Refuse a model that is neither a local model name, a checkpoint directory nor a hub id (``org/name``), and a
    directory whose config is of no supported family; before anything is built, loaded or written."""
    from experiments.spec import ExperimentError

    if name in LOCAL_MODELS:
        return
    if Path(name).is_dir():
        from models.registry import family_of_checkpoint

        try:
            family_of_checkpoint(name)
        except OSError as e:
            raise ExperimentError(f"--model {name}: not a checkpoint directory ({e}); give a directory with a "
                                  "config.json") from None  # fmt: skip
        return
    if name.count("/") == 1 and all(name.split("/")) and not name.startswith("."):
        return  # a hub id: its family is checked when its config is read
    local = ", ".join(LOCAL_MODELS)
    raise ExperimentError(f"--model {name!r}: no such directory, and not a hub id (org/name) or a local model "
                          f"({local})")  # fmt: skip


def model_slug(model: str) -> str:
    """A model as one path component and W&B tag: a hub id ``Qwen/Qwen2.5-Omni-7B`` -> ``Qwen--Qwen2.5-Omni-7B``;
    a local model name as it is; a directory -> its name and a hash of its absolute path (two ``checkpoint-100``
    directories stay apart)."""
    import hashlib

    if model not in LOCAL_MODELS and Path(model).is_dir():
        path = str(Path(model).resolve())
        return f"{Path(path).name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    return model.replace("/", "--")


SMOKE_SIZES = {"train": 120, "val": 24, "test": 30}
SMOKE_MIX = 18  # items of the smoke profile's mixed test (the toy's: data.toy.mix.DEFAULT_MIX_SIZE)
SFT_TOY_LR = 1e-3
# GRPO: 16 prompts per device and micro-batch (x accumulation 2: 32 a step; 4, the earlier toy's, gained about 6
# points in 160 steps). With 32 a step, 2e-3 stalled seed 0; with 8 a step, 1.5e-3 sent two seeds of three to chance.
GRPO_TOY_LR = 1e-3
GRPO_TOY_PROMPTS = 16
GRPO_TOY_STEPS = {"p2": 120, "p3": 60}


@dataclass(frozen=True)
class BenchmarkSource:
    """Where one benchmark a run is evaluated on comes from: its question file and the folder its clips are under.

    ``benchmark`` is the registered name (data/benchmark_registry.py); ``version_label`` names a test set that is no
    registered version (the toy world's), None: detect the version.
    """

    benchmark: str
    json: Path
    audio_dir: Path | None
    version_label: str | None = None

    @property
    def set_name(self) -> str:
        """Its evaluations' folder and W&B key prefix: ``test`` for MMAU test-mini, ``mmar`` for MMAR."""
        from data.benchmark_registry import get_benchmark

        return get_benchmark(self.benchmark).set_name

    def load(self, **kwargs: Any) -> Any:
        """The loaded benchmark (:func:`data.benchmark.load_benchmark`)."""
        from data.benchmark import load_benchmark

        return load_benchmark(self.json, self.audio_dir, version_label=self.version_label, benchmark=self.benchmark,
                              **kwargs)  # fmt: skip


@dataclass(frozen=True)
class DataPaths:
    test_json: Path
    test_audio_dir: Path | None
    train: Path | None = None
    val: Path | None = None
    train_audio_dir: Path | None = None
    val_audio_dir: Path | None = None
    version_label: str | None = None  # of the test sets (the toy's: "toy"); None: detect MMAU's and MMAR's versions
    more_tests: tuple[BenchmarkSource, ...] = ()  # benchmarks beside MMAU test-mini (MMAR, or the toy's mixed test)
    skipped: tuple[str, ...] = ()  # registered benchmarks without data here, each with how to give it

    @property
    def benchmarks(self) -> tuple[BenchmarkSource, ...]:
        """Every benchmark the profile has data for, MMAU test-mini (Table 2's) first."""
        from data.benchmark_registry import MMAU

        return (BenchmarkSource(MMAU.name, self.test_json, self.test_audio_dir, self.version_label), *self.more_tests)

    def eval_benchmarks(self, names: tuple[str, ...] | None) -> tuple[BenchmarkSource, ...]:
        """The benchmarks of ``eval.benchmarks`` (:attr:`EvalSpec.benchmark_names`; None: all the profile has,
        saying once which registered ones it skips for want of data). A benchmark asked for by name and not given
        is a :class:`DataError` saying how to give it."""
        from data.schema import DataError

        have = {b.benchmark: b for b in self.benchmarks}
        if names is None:
            for why in self.skipped:
                _say_once(why)
            return self.benchmarks
        absent = [n for n in names if n not in have]
        if absent:
            hints = "; ".join(why for why in self.skipped if why.split(":")[0] in absent)
            raise DataError(f"eval.benchmarks asks for {', '.join(absent)}, which this profile has no data for"
                            + (f" ({hints})" if hints else ""))  # fmt: skip
        return tuple(have[n] for n in names)


_SAID: set[str] = set()


def _say_once(text: str) -> None:
    if text not in _SAID:
        _SAID.add(text)
        print(text, flush=True)


@dataclass(frozen=True)
class Profile:
    name: str
    model: str  # a hub id, a checkpoint directory or a local model name (LOCAL_MODELS)
    description: str

    @property
    def default_model(self) -> str:
        return PROFILES[self.name].model

    @property
    def model_label(self) -> str | None:
        """None for the profile's own model; otherwise :func:`model_slug` of the model (``--model``), which then
        names the run's directory, W&B run and reports."""
        return None if self.model == self.default_model else model_slug(self.model)

    def with_model(self, model: str | None) -> Profile:
        """This profile on ``model`` (None: its own)."""
        return self if model is None or model == self.model else replace(self, model=model)

    def resolve_model(self) -> str:
        """A loadable model path or hub id (local models are built and cached on first use)."""
        return resolve_model_name(self.model)

    def data(self) -> DataPaths:
        if self.name == "paper":
            return _paper_data()
        return _toy_data(SMOKE_SIZES if self.name == "smoke" else None)

    def scale(self, exp: Experiment) -> Experiment:
        """Adapt an experiment to this profile's scale (the paper profile changes nothing)."""
        if self.name == "paper":
            return exp
        return _scale_smoke(_scale_toy(exp)) if self.name == "smoke" else _scale_toy(exp)


def _scale_toy(exp: Experiment) -> Experiment:
    new_tokens = 64 if exp.prompt == "p3" else 32
    exp = replace(exp, eval=replace(exp.eval, max_new_tokens=new_tokens, batch_size=64, val_items=None))
    if exp.method == "sft" and exp.train is not None:
        exp = replace(exp, train=replace(exp.train, learning_rate=SFT_TOY_LR, epochs=2.0, per_device_batch=32,
                                         save_every=40))  # fmt: skip
    if exp.method == "grpo" and exp.train is not None and exp.grpo is not None:
        steps = GRPO_TOY_STEPS.get(exp.prompt, GRPO_TOY_STEPS["p2"])
        # The original code's schedule decays over twice its 500 steps: the toy keeps that ratio.
        schedule = None if exp.train.schedule_steps is None else exp.train.schedule_steps * steps // 500
        exp = replace(
            exp,
            train=replace(
                exp.train,
                learning_rate=GRPO_TOY_LR,
                max_steps=steps,
                per_device_batch=GRPO_TOY_PROMPTS,
                save_every=20,
                schedule_steps=schedule,
            ),  # fmt: skip
            # 512 -> 32 tokens for answer-only completions, 64 for think-then-answer; the original 256 halves both.
            grpo=replace(
                exp.grpo, max_completion_length=exp.grpo.max_completion_length // (8 if exp.prompt == "p3" else 16)
            ),
        )
    return exp


def _scale_smoke(exp: Experiment) -> Experiment:
    exp = replace(exp, eval=replace(exp.eval, max_new_tokens=8))
    if exp.train is not None:
        exp = replace(exp, train=replace(exp.train, logging_steps=1))  # tests read one log row per step
        if exp.method == "sft":
            exp = replace(exp, train=replace(exp.train, epochs=None, max_steps=4, per_device_batch=4, save_every=2))
        else:
            schedule = None if exp.train.schedule_steps is None else 8
            exp = replace(exp, train=replace(exp.train, max_steps=4, per_device_batch=2, save_every=2,
                                             schedule_steps=schedule))  # fmt: skip
    if exp.grpo is not None:
        exp = replace(exp, grpo=replace(exp.grpo, num_generations=4, max_completion_length=8))
    return exp


PROFILES: dict[str, Profile] = {
    "toy": Profile("toy", "toy-instruct", "toy instruct base + synthetic toy world, CPU minutes"),
    "paper": Profile("paper", PAPER_MODEL, "Qwen2-Audio-7B-Instruct, AVQA, MMAU test-mini; GPUs"),
    "smoke": Profile("smoke", "tiny", "untrained tiny model, small toy world, a few steps: for tests (seconds)"),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None


def toy_world_dir(seed: int = 0, sizes: dict[str, int] | None = None) -> Path:
    """Where a toy world lives: keyed by the generator's sources and sizes, so a change regenerates it."""
    from data import toy

    return toy.world_dir(output_root() / "cache", seed, sizes)


def ensure_toy_world(seed: int = 0, sizes: dict[str, int] | None = None) -> Path:
    from data import toy

    return toy.ensure_world(output_root() / "cache", seed, sizes)


def _toy_data(sizes: dict[str, int] | None) -> DataPaths:
    """The toy world's splits, and its mixed test in MMAR's shape (data/toy/mix.py) standing in for MMAR."""
    from data.benchmark_registry import MMAR
    from data.toy.mix import DEFAULT_MIX_SIZE, MIX_FILE, ensure_mix

    root = ensure_toy_world(sizes=sizes)
    mix = ensure_mix(output_root() / "cache", n=DEFAULT_MIX_SIZE if sizes is None else SMOKE_MIX)
    return DataPaths(
        test_json=root / "test" / "mmau-test-mini.json",
        test_audio_dir=root / "test",
        train=root / "train" / "train_qa.json",
        val=root / "val" / "val_qa.json",
        train_audio_dir=root / "train" / "audio",
        val_audio_dir=root / "val" / "audio",
        version_label="toy",
        more_tests=(BenchmarkSource(MMAR.name, mix / MIX_FILE, mix, "toy"),),
    )


PAPER_ENV = {
    "MMAU_JSON": "MMAU test-mini question file (e.g. mmau-test-mini.json), or a dataset as ID_OR_PATH[:SPLIT] "
    "(e.g. lmms-lab/mmau:test_mini; docs/benchmarks.md)",
    "MMAU_AUDIO_DIR": "directory holding test-mini-audios/ (not needed for a dataset)",
    "AVQA_TRAIN": "AVQA train annotations (train_qa.json) or the original code's JSON-lines file, or a dataset "
    "(e.g. gijs/avqa-processed:train)",
    "AVQA_VAL": "AVQA val annotations (val_qa.json), used for checkpoint selection, or a dataset "
    "(e.g. gijs/avqa-processed:val)",
    "AVQA_AUDIO_DIR": "directory of AVQA audio clips named <video_name>.wav",
    "MMAR_JSON": "optional: MMAR question file (MMAR-Benchmark.json), or a dataset as ID_OR_PATH[:SPLIT]; every run "
    "is then evaluated on MMAR too",
    "MMAR_AUDIO_DIR": "directory holding MMAR's audio/ folder (not needed for a dataset)",
}
MMAR_SKIPPED = "mmar: skipped (no data: set MMAR_JSON, and MMAR_AUDIO_DIR for a question file; docs/benchmarks.md)"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _source(name: str, audio_dir: Path | None) -> tuple[Path | None, Path | None]:
    """A data setting's file and audio folder; a dataset (``ID_OR_PATH[:SPLIT]``) is written out once under
    ``outputs/cache/hub/`` as a question file and clips (data/hub_copies.py), which are then read as usual."""
    from data.hub_copies import is_dataset_source, materialise

    value = os.environ.get(name)
    if not value:
        return None, audio_dir
    source, _, split = value.rpartition(":") if ":" in value and not Path(value).exists() else (value, "", "")
    if not is_dataset_source(source):
        return Path(value), audio_dir
    made = materialise(source, split=split or None, cache_dir=output_root() / "cache" / "hub")
    return made.records_path, made.audio_dir


def _paper_data() -> DataPaths:
    if not os.environ.get("MMAU_JSON"):
        lines = "\n".join(f"  {k}: {v}" for k, v in PAPER_ENV.items())
        raise FileNotFoundError(f"the paper profile needs the data paths in environment variables:\n{lines}")
    audio = _env_path("AVQA_AUDIO_DIR")
    test, test_audio = _source("MMAU_JSON", _env_path("MMAU_AUDIO_DIR"))
    train, train_audio = _source("AVQA_TRAIN", audio)
    val, val_audio = _source("AVQA_VAL", audio)
    mmar, mmar_audio = _source("MMAR_JSON", _env_path("MMAR_AUDIO_DIR"))
    from data.benchmark_registry import MMAR

    more = (BenchmarkSource(MMAR.name, mmar, mmar_audio),) if mmar is not None else ()
    return DataPaths(test_json=Path(test or ""), test_audio_dir=test_audio, train=train, val=val,
                     train_audio_dir=train_audio, val_audio_dir=val_audio, more_tests=more,
                     skipped=() if more else (MMAR_SKIPPED,))  # fmt: skip
