"""Experiments as data and the CLI: every entry resolves, overrides are typed, `direct` runs end to end."""

from __future__ import annotations

import json
import shutil

import pytest

from experiments.__main__ import main
from experiments.registry import REGISTRY
from experiments.runner import resolve
from experiments.spec import apply_overrides


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("profile", ["toy", "paper"])
def test_every_experiment_resolves_and_serialises(name, profile):
    run = resolve(name, profile, seed=3)
    d = run.to_dict()
    assert d["experiment"]["name"] == name and d["seed"] == 3 and not d["adhoc"]
    json.dumps(d)  # what is written to experiment.json and logged to W&B must be plain JSON
    assert str(run.output_dir).endswith(f"{profile}/{name}/seed3")


def test_overrides_are_typed_and_mark_the_run_ad_hoc():
    run = resolve("direct", "toy", overrides={"eval.max_new_tokens": "7", "eval.audio_mode": "silent"})
    assert run.experiment.eval.max_new_tokens == 7 and run.experiment.eval.audio_mode == "silent" and run.adhoc
    with pytest.raises(KeyError, match="max_new_tokens"):
        apply_overrides(run.experiment, {"eval.max_new_tokenz": "3"})
    with pytest.raises(ValueError):
        apply_overrides(run.experiment, {"eval.batch_size": "many"})


def test_unknown_names_fail_listing_valid_ones(capsys):
    assert main(["run", "no-such-exp"]) == 2
    assert "direct" in capsys.readouterr().err
    assert main(["run", "direct", "--profile", "nope"]) == 2
    assert "toy" in capsys.readouterr().err


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REGISTRY)


def test_direct_on_toy_profile_end_to_end(tmp_path):
    out = tmp_path / "direct"
    assert main(["run", "direct", "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())
    exp = json.loads((out / "experiment.json").read_text())
    assert metrics["n"] == len(preds) == 330  # the whole toy test split, nothing skipped
    assert metrics["benchmark"]["version"].startswith("toy-") and metrics["prompt_id"] == "p2"
    assert exp["experiment"]["name"] == "direct" and exp["profile"] == "toy"
    assert set(metrics["accuracy"]) == {"sound", "music", "speech", "avg"}


def test_eval_cli_missing_audio_is_an_error_unless_allowed_and_recorded(tmp_path, capsys):
    from tests.helpers import write_mmau_benchmark

    bench = write_mmau_benchmark(tmp_path / "b", n=6)
    (tmp_path / "b" / "test-mini-audios" / "item002.wav").unlink()
    args = ["eval", "--model", "tiny", "--benchmark", str(bench), "--max-new-tokens", "4"]
    assert main([*args, "--output-dir", str(tmp_path / "e1")]) == 2
    assert "item002" in capsys.readouterr().err
    assert main([*args, "--output-dir", str(tmp_path / "e2"), "--allow-missing-audio"]) == 0
    metrics = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    assert metrics["benchmark"]["missing_audio_ids"] == ["item002"] and metrics["n"] == 5
    shutil.rmtree(tmp_path / "b")
