"""Profiles: where an experiment runs (model, data, scale). The experiment says what; the profile says where.

- ``toy`` (default): the tiny Qwen2-Audio (2 s audio window, built locally, no download) on the synthetic toy world
  (``data/toy.py``), generated on first use under ``outputs/cache/``. Evaluation decodes at most 32 new tokens
  (64 for Prompt <3>) because toy answers are one word. Minutes on a laptop CPU.
- ``paper``: ``Qwen/Qwen2-Audio-7B-Instruct`` with AVQA and MMAU test-mini from paths you give through environment
  variables (``MMAU_JSON``, ``MMAU_AUDIO_DIR``, ``AVQA_TRAIN``, ``AVQA_VAL``, ``AVQA_AUDIO_DIR``; see README).
  The paper's settings, unchanged. Needs GPUs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from experiments.spec import Experiment


def output_root() -> Path:
    """Root of all outputs and caches: ``$R1AQA_OUTPUTS``, default ``outputs/`` (read at call time, for tests)."""
    return Path(os.environ.get("R1AQA_OUTPUTS", "outputs"))


PAPER_MODEL = "Qwen/Qwen2-Audio-7B-Instruct"
TINY_MODEL = "tiny"  # sentinel: build (once, cached) the tiny offline Qwen2-Audio


@dataclass(frozen=True)
class DataPaths:
    test_json: Path
    test_audio_dir: Path | None
    train: Path | None = None
    val: Path | None = None
    train_audio_dir: Path | None = None
    val_audio_dir: Path | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    model: str
    description: str

    @property
    def benchmark_label(self) -> str | None:
        """The version label of a test set that is not MMAU (the toy world's); None means: detect MMAU's."""
        return "toy" if self.name == "toy" else None

    def resolve_model(self) -> str:
        """A loadable model path or hub id (the tiny model is built and cached on first use)."""
        if self.model == TINY_MODEL:
            from data.models import ensure_tiny_model

            return str(ensure_tiny_model(output_root() / "cache"))
        return self.model

    def data(self) -> DataPaths:
        return _toy_data() if self.name == "toy" else _paper_data()

    def scale(self, exp: Experiment) -> Experiment:
        """Adapt an experiment to this profile's scale (the paper profile changes nothing)."""
        if self.name != "toy":
            return exp
        new_tokens = 64 if exp.prompt == "p3" else 32
        return replace(exp, eval=replace(exp.eval, max_new_tokens=new_tokens, batch_size=64))


PROFILES: dict[str, Profile] = {
    "toy": Profile("toy", TINY_MODEL, "tiny Qwen2-Audio + synthetic toy world, CPU minutes"),
    "paper": Profile("paper", PAPER_MODEL, "Qwen2-Audio-7B-Instruct, AVQA, MMAU test-mini; GPUs"),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None


def toy_world_dir(seed: int = 0) -> Path:
    """Where the toy world lives: keyed by the generator's source, so a change to data/toy.py regenerates it."""
    import data.toy as toy

    digest = hashlib.sha256(Path(toy.__file__).read_bytes()).hexdigest()[:10]
    return output_root() / "cache" / f"toy-world-s{seed}-{digest}"


def ensure_toy_world(seed: int = 0) -> Path:
    from data import toy

    path = toy_world_dir(seed)
    if (path / "world.json").exists():
        return path
    tmp = path.with_name(path.name + ".partial")
    toy.generate_world(tmp, seed=seed)
    if path.exists():  # another process finished first
        return path
    tmp.rename(path)
    return path


def _toy_data() -> DataPaths:
    root = ensure_toy_world()
    return DataPaths(
        test_json=root / "test" / "mmau-test-mini.json",
        test_audio_dir=root / "test",
        train=root / "train" / "train_qa.json",
        val=root / "val" / "val_qa.json",
        train_audio_dir=root / "train" / "audio",
        val_audio_dir=root / "val" / "audio",
    )


PAPER_ENV = {
    "MMAU_JSON": "MMAU test-mini question file (e.g. mmau-test-mini.json)",
    "MMAU_AUDIO_DIR": "directory holding test-mini-audios/",
    "AVQA_TRAIN": "AVQA train annotations (train_qa.json) or the original code's JSON-lines file",
    "AVQA_VAL": "AVQA val annotations (val_qa.json), used for checkpoint selection",
    "AVQA_AUDIO_DIR": "directory of AVQA audio clips named <video_name>.wav",
}


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _paper_data() -> DataPaths:
    test = _env_path("MMAU_JSON")
    if test is None:
        lines = "\n".join(f"  {k}: {v}" for k, v in PAPER_ENV.items())
        raise FileNotFoundError(f"the paper profile needs the data paths in environment variables:\n{lines}")
    audio = _env_path("AVQA_AUDIO_DIR")
    return DataPaths(
        test_json=test,
        test_audio_dir=_env_path("MMAU_AUDIO_DIR"),
        train=_env_path("AVQA_TRAIN"),
        val=_env_path("AVQA_VAL"),
        train_audio_dir=audio,
        val_audio_dir=audio,
    )
