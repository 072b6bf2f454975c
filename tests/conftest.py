"""Shared test set-up: no network, offline W&B, and paths to the real MMAU question files shipped in ../shared."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set before any test imports transformers or wandb: nothing in the suite may download at test time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One throw-away output root per test session: the toy world and tiny model are built there at most once.
os.environ["R1AQA_OUTPUTS"] = tempfile.mkdtemp(prefix="r1aqa-tests-")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_MMAU = REPO.parent / "shared" / "data" / "mmau"
MMAU_VERSIONS = {
    "a5cd89a": "mmau-test-mini.a5cd89a.json",
    "1f675a9": "mmau-test-mini.1f675a9.json",
    "f0a4a97": "mmau-test-mini.f0a4a97.json",
}


@pytest.fixture(params=sorted(MMAU_VERSIONS))
def mmau_file(request: pytest.FixtureRequest) -> Path:
    """Each shipped MMAU test-mini question file in turn (skipped only if ../shared is absent)."""
    path = SHARED_MMAU / MMAU_VERSIONS[request.param]
    if not path.exists():
        if os.environ.get("CI"):  # in CI a copy of shared/ lies beside the clone: its absence is a failure
            pytest.fail(f"shared MMAU file missing in CI: {path}")
        pytest.skip(f"shared MMAU file missing: {path}")
    return path


@pytest.fixture(scope="session")
def smoke_world():
    """The small toy world of the smoke profile (generated once per test session)."""
    from experiments.profiles import SMOKE_SIZES, ensure_toy_world

    return ensure_toy_world(sizes=SMOKE_SIZES)


@pytest.fixture(scope="session")
def tiny_dir():
    """The untrained tiny Qwen2-Audio, saved like a hub model (built once per test session)."""
    from experiments.profiles import get_profile

    return get_profile("smoke").resolve_model()


@pytest.fixture()
def launch_caches(smoke_world, tiny_dir):
    """The smoke world and tiny model built in this process first, so that launched processes reuse them."""
    return smoke_world, tiny_dir


@pytest.fixture(scope="session")
def smoke_train_items(smoke_world):
    from data.avqa import load_avqa

    return load_avqa(smoke_world / "train" / "train_qa.json", smoke_world / "train" / "audio").items


@pytest.fixture(scope="session")
def fx(tmp_path_factory: pytest.TempPathFactory):
    """The analysis fixture: real offline W&B runs of every Table 2 experiment plus their prediction files."""
    from tests.analysis_fixtures import analysis_fixture

    return analysis_fixture(tmp_path_factory)


@pytest.fixture(scope="session")
def tables(fx):
    from analysis.runs import read_offline_runs

    return read_offline_runs(fx.wandb_dir)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this session's throw-away output root (toy world, tiny model, runs)."""
    import shutil

    shutil.rmtree(os.environ["R1AQA_OUTPUTS"], ignore_errors=True)
