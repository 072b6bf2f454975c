"""The toy bases shipped in the repository (experiments/shipped_base.py): their checksums, their gate, and that the
toy profile starts from them without building anything.

    .venv/bin/pytest tests/test_shipped_base.py -q
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from data.schema import DataError
from experiments import shipped_base, toy_base

FAMILIES = {"toy-instruct": "qwen2-audio", "toy-qwen2.5-omni": "qwen2.5-omni"}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_shipped_base_matches_its_checksums_and_settings(name: str) -> None:
    path = shipped_base.shipped_dir(name)
    manifest = shipped_base.check_shipped(path)
    assert set(manifest["files"]) == set(shipped_base.FILES)
    assert manifest["spec"] == json.loads(json.dumps(asdict(toy_base.ToyBaseSpec(family=FAMILIES[name]))))
    assert toy_base.shipped_base(toy_base.ToyBaseSpec(family=FAMILIES[name])) == path
    # Other settings (the robustness table's seeds) are not the shipped base: they are built.
    assert toy_base.shipped_base(toy_base.ToyBaseSpec(family=FAMILIES[name], seed=1)) is None
    report = json.loads((path / toy_base.REPORT).read_text())
    assert report["gate"]["passed"] and report["spec"] == manifest["spec"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_shipped_base_passes_its_gate_here(name: str, tmp_path: Path) -> None:
    """The shipped weights, evaluated zero-shot on the toy test split as the build's gate does, pass the gate, with
    the shipped report's rates (on another CPU a few greedy answers may flip: a point of slack)."""
    from experiments.profiles import ensure_toy_world

    path = shipped_base.shipped_dir(name)
    shipped = json.loads((path / toy_base.REPORT).read_text())
    report = toy_base.zero_shot_report(path, ensure_toy_world(), tmp_path / "zero_shot")
    assert toy_base.gate(report)["passed"], report
    for key in ("format_rate", "listed_option_rate", "test_accuracy", "silent_accuracy"):
        assert abs(report[key] - shipped[key]) <= 1.0, (key, report[key], shipped[key])
    assert not (path / "zero_shot").exists()  # nothing written into the repository


def test_a_changed_or_missing_file_is_named_with_the_fix(tmp_path: Path) -> None:
    copy = tmp_path / "toy-instruct"
    shutil.copytree(shipped_base.shipped_dir("toy-instruct"), copy)
    shipped_base.check_shipped(copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"model\.safetensors changed") as err:
        shipped_base.check_shipped(copy)
    assert "git checkout" in str(err.value) and "--ship" in str(err.value)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(DataError, match="tokenizer.json missing"):
        shipped_base.check_shipped(copy)


def test_the_toy_profile_starts_from_the_shipped_base_and_builds_none(tmp_path, monkeypatch) -> None:
    from experiments.profiles import resolve_model_name

    monkeypatch.setenv("R1AQA_OUTPUTS", str(tmp_path))
    monkeypatch.setattr(toy_base, "ensure_toy_base", lambda *a, **k: pytest.fail("a base was built"))
    assert Path(resolve_model_name("toy-instruct")) == shipped_base.shipped_dir("toy-instruct")
    assert Path(resolve_model_name("toy-qwen2.5-omni")) == shipped_base.shipped_dir("toy-qwen2.5-omni")
    assert not list(tmp_path.glob("cache/toy-*"))


def test_shipping_replaces_the_set_and_records_what_built_it(tmp_path: Path, capsys) -> None:
    built = tmp_path / "built"
    built.mkdir()
    for f in shipped_base.FILES:
        (built / f).write_text(f"stub {f}")
    spec = toy_base.ToyBaseSpec(seed=7)
    root = tmp_path / "assets"
    where = shipped_base.ship(built, "toy-instruct", spec=asdict(spec), fingerprint="f" * 12, root=root)
    manifest = shipped_base.check_shipped(where)
    assert manifest["spec"]["seed"] == 7 and manifest["fingerprint"] == "f" * 12 and "cpu" in manifest["built_on"]
    assert toy_base.shipped_base(spec, root) == where
    # A shipped base built by other code than this tree's is used as shipped, and said once.
    toy_base._NOTED.clear()
    assert toy_base.toy_base_model(tmp_path / "cache", spec, root) == where
    assert toy_base.toy_base_model(tmp_path / "cache", spec, root) == where
    assert capsys.readouterr().out.count("was built by other code") == 1
