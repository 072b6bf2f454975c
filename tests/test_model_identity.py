"""The model is part of a run's identity (``--model``): its directory, ``experiment.json``, W&B name and tags, and
what a resume or a rerun in the same directory accepts. Every experiment of Table 2 runs on the Omni twins.

    HF_HUB_OFFLINE=1 WANDB_MODE=offline python -m pytest -q tests/test_model_identity.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.schema import DataError
from experiments.__main__ import main
from experiments.paths import output_root
from experiments.profiles import model_slug
from experiments.runner import ResolvedRun, check_same_run, for_resume, resolve, table2_experiments
from experiments.spec import ExperimentError
from experiments.tracking import run_name, run_tags
from models.registry import family_of_checkpoint

OMNI_TWINS = ("tiny-qwen2.5-omni", "tiny-qwen3-omni")


def test_the_profiles_own_model_keeps_the_canonical_directory_name_and_tags():
    plain, same = resolve("sft-lora", "toy", 1), resolve("sft-lora", "toy", 1, model="toy-instruct")
    assert plain == same and plain.profile.model_label is None
    assert plain.output_dir == output_root() / "toy" / "sft-lora" / "seed1"
    assert run_name(plain) == "sft-lora-toy-s1"
    assert run_tags(plain)[:4] == ["sft", "toy", "p1", "model:toy-instruct"]  # SFT trains on Prompt <1>


@pytest.mark.parametrize("model, slug", [("toy-qwen2.5-omni", "toy-qwen2.5-omni"),
                                         ("Qwen/Qwen2.5-Omni-7B", "Qwen--Qwen2.5-Omni-7B")])  # fmt: skip
def test_another_model_names_the_directory_run_and_tags(model, slug):
    run = resolve("grpo-p2", "toy", 2, model=model)
    assert not run.adhoc, run.adhoc_reasons  # a canonical run of that model, selected by analysis
    assert run.output_dir == output_root() / "toy" / slug / "grpo-p2" / "seed2"
    assert run_name(run) == f"grpo-p2-toy-{slug}-s2"
    tags = run_tags(run)
    assert tags[1] == "toy" and f"model:{slug}" in tags  # analysis reads the profile as the second tag


def test_experiment_json_keeps_the_model_and_older_records_read_as_the_profiles_own(tmp_path):
    run = resolve("direct", "smoke", 0, model="tiny-qwen3-omni")
    back = ResolvedRun.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back.profile.model == "tiny-qwen3-omni" and back == run
    older = run.to_dict()
    del older["profile_model"]  # written before --model existed
    assert ResolvedRun.from_dict(older).profile.model == "tiny"


def test_a_resume_or_rerun_refuses_another_model(tmp_path):
    stored = resolve("sft-full", "smoke", 0, output_dir=tmp_path, model="tiny-qwen2.5-omni")
    (tmp_path / "experiment.json").write_text(json.dumps(stored.to_dict()))
    with pytest.raises(DataError, match="holds model 'tiny-qwen2.5-omni', not 'tiny-qwen3-omni'"):
        for_resume(resolve("sft-full", "smoke", 0, output_dir=tmp_path, model="tiny-qwen3-omni"))
    with pytest.raises(DataError, match=r"differs in model \(tiny-qwen2.5-omni there\)"):
        check_same_run(resolve("sft-full", "smoke", 0, output_dir=tmp_path), stored)
    assert for_resume(resolve("sft-full", "smoke", 0, output_dir=tmp_path, model="tiny-qwen2.5-omni")) == stored


def test_the_command_line_resumes_with_the_stored_model(tmp_path, capsys):
    assert main(["run", "direct", "--profile", "smoke", "--model", "tiny-qwen3-omni", "--output-dir",
                 str(tmp_path)]) == 0  # fmt: skip
    assert json.loads((tmp_path / "experiment.json").read_text())["profile_model"] == "tiny-qwen3-omni"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "qwen3-omni" in metrics["model"].lower() or "tiny-qwen3-omni" in metrics["model"]
    capsys.readouterr()
    assert main(["run", "direct", "--resume", "--output-dir", str(tmp_path)]) == 0  # model from experiment.json
    assert "already complete" in capsys.readouterr().out
    assert main(["run", "direct", "--resume", "--output-dir", str(tmp_path), "--model", "tiny"]) == 2
    assert "holds model 'tiny-qwen3-omni'" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["nonsense", "./no/such/dir", "a/b/c"])
def test_a_model_that_is_no_model_is_refused_before_anything_runs(model, tmp_path, capsys):
    with pytest.raises(ExperimentError, match="not a hub id"):
        resolve("direct", "smoke", 0, model=model)
    assert main(["run", "direct", "--profile", "smoke", "--model", model, "--output-dir", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_a_directory_of_no_supported_family_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(DataError, match="not a supported model family"):
        resolve("direct", "smoke", 0, model=str(tmp_path))


def test_checkpoint_directories_of_the_same_name_get_different_slugs(tmp_path):
    a, b = tmp_path / "a" / "checkpoint-100", tmp_path / "b" / "checkpoint-100"
    a.mkdir(parents=True), b.mkdir(parents=True)
    assert model_slug(str(a)) != model_slug(str(b)) and model_slug(str(a)).startswith("checkpoint-100-")
    assert "/" not in model_slug("Qwen/Qwen3-Omni-30B-A3B-Instruct")


@pytest.mark.parametrize("model", OMNI_TWINS)
def test_every_table2_experiment_runs_on_the_omni_twins(model, capsys):
    """``python -m experiments run E --profile smoke --model M`` for every E of Table 2 (about 15 s a model)."""
    for name in table2_experiments():
        assert main(["run", name, "--profile", "smoke", "--model", model]) == 0, name
        run_dir = output_root() / "smoke" / model / name / "seed0"
        stored = json.loads((run_dir / "experiment.json").read_text())
        assert stored["profile_model"] == model
        metrics = json.loads((run_dir / "metrics.json").read_text())
        predictions = json.loads((run_dir / "predictions.json").read_text())
        assert len(predictions) == metrics["n"] == 30, name  # every item of the smoke test split answered
        assert (run_dir / "run_complete.json").exists()
        if name != "direct":  # a training run's checkpoints hold that model's family
            checkpoint = sorted(Path(run_dir).glob("checkpoint-*"))[-1]
            assert family_of_checkpoint(checkpoint).tiny_name == model, (name, checkpoint)
