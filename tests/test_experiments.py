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


def test_direct_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    out = tmp_path / "direct"
    assert main(["run", "direct", "--profile", "smoke", "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())
    exp = json.loads((out / "experiment.json").read_text())
    assert metrics["n"] == len(preds) == 30  # the whole (smoke) test split, nothing skipped
    assert metrics["benchmark"]["version"].startswith("toy-") and metrics["prompt_id"] == "p2"
    assert exp["experiment"]["name"] == "direct" and exp["profile"] == "smoke"
    assert set(metrics["accuracy"]) == {"sound", "music", "speech", "avg"}


def test_eval_cli_missing_audio_is_an_error_unless_allowed_and_recorded(tmp_path, capsys, monkeypatch):
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


def _diff(a, b, prefix=""):
    """Dotted names of the leaf fields in which two experiment dicts differ."""
    out = set()
    for key in set(a) | set(b):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= _diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.add(f"{prefix}{key}")
    return out


@pytest.mark.parametrize(
    ("name", "base", "expected"),
    [
        ("grpo-p3", "grpo-p2", {"prompt", "eval.max_new_tokens"}),  # Prompt <3> evaluates with 512 new tokens
        ("grpo-p2-clip", "grpo-p2", {"grpo.num_iterations"}),
        ("grpo-p2-nokl", "grpo-p2", {"grpo.beta"}),
        (
            "grpo-p2-orig",
            "grpo-p2",
            {"train.schedule_steps", "grpo.max_completion_length", "grpo.accuracy_reward", "grpo.strict_format"},
        ),  # fmt: skip
        ("grpo-p2-lora", "grpo-p2", {"lora"}),
        ("sft-lora", "sft-full", {"lora"}),
        ("direct-silent", "direct", {"eval.audio_mode"}),
    ],
)
def test_ablations_differ_from_their_base_only_where_their_name_says(name, base, expected):
    a, b = REGISTRY[name].to_dict(), REGISTRY[base].to_dict()
    for d in (a, b):
        d.pop("name"), d.pop("description"), d.pop("table2_row")
    assert _diff(a, b) == expected


def test_table2_rows_exist_with_the_papers_recipes():
    rows = {e.table2_row: e for e in REGISTRY.values() if e.table2_row}
    assert len(rows) == 5
    sft, grpo = REGISTRY["sft-full"], REGISTRY["grpo-p2"]
    assert (sft.train.learning_rate, sft.train.epochs, sft.train.per_device_batch, sft.train.save_every) == (
        5e-6,
        4,
        4,
        200,
    )
    assert sft.prompt == "p1" and REGISTRY["sft-lora"].lora.r == 16
    assert (grpo.train.learning_rate, grpo.train.max_steps, grpo.train.per_device_batch, grpo.train.grad_accum) == (
        1e-6,
        500,
        1,
        2,
    )
