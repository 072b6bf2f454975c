"""A run's whole configuration is checked before anything is loaded; logging cadence and evaluation settings are wired.

- A bad ``--set`` names the field, the value and what is accepted, on one line, with exit status 2; it leaves no run
  directory, ``experiment.json`` or W&B run behind, and no model is loaded (the loaders are replaced by tripwires).
- ``python -m experiments paper`` checks every run of the table before the first one starts.
- ``train.logging_steps`` reaches both trainers' arguments; each profile has its own.
- Prompt <3> evaluates with at least its GRPO completion length.
- Every evaluation of a run gets the run's compute dtype (step 0 included) and ``eval.decoding`` as its source.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from experiments.__main__ import main
from experiments.compute import run_dtype
from experiments.registry import REGISTRY
from experiments.runner import ResolvedRun, check_same_run, resolve, run, validate
from experiments.spec import LR_SCHEDULERS, EvalSpec, ExperimentError, TrainSpec, check_fields
from tests.helpers import REPO, write_mmau_benchmark


class Loaded(Exception):
    """Raised by the tripwires: something was loaded or built that validation should have come before."""


@pytest.fixture()
def tripwires(monkeypatch):
    """Any data, model or W&B run touched raises :class:`Loaded` (so a test on the old code fails fast, not slowly)."""
    import experiments.tracking
    import models.loading
    from experiments.profiles import Profile

    def trip(*args, **kwargs):
        raise Loaded("loaded before the configuration was validated")

    monkeypatch.setattr(Profile, "data", trip)
    monkeypatch.setattr(Profile, "resolve_model", trip)
    monkeypatch.setattr(models.loading, "load_model_and_processor", trip)
    monkeypatch.setattr(experiments.tracking, "tracked_run", trip)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.learning_rate=abc", "--set train.learning_rate='abc': must be a number > 0"),
        ("train.max_steps=2.5", "--set train.max_steps='2.5': must be an integer >= 1 or none"),
        ("eval.batch_size=0", "eval.batch_size=0: must be an integer >= 1"),
        ("grpo.num_generations=1", "grpo.num_generations=1: must be an integer >= 2 (GRPO compares completions"),
        ("lora.dropout=1", "lora.dropout=1.0: must be a number in [0, 1)"),
        ("train.lr_scheduler=cosine_with_min_lr", "train.lr_scheduler='cosine_with_min_lr': must be one of 'linear'"),
        ("eval.decoding=greedy", "eval.decoding='greedy': must be one of 'neutral', 'checkpoint'"),
        ("grpo.loss_type=luspo", "grpo.loss_type='luspo': must be one of 'grpo'"),
    ],
)
def test_bad_set_values_name_field_value_and_range(setting, message, tmp_path, capsys, tripwires):
    out = tmp_path / "run"
    assert main(["run", "grpo-p2", "--profile", "smoke", "--output-dir", str(out), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err  # one line
    assert not out.exists()  # no lock, no experiment.json, no wandb_run_id


def test_bad_set_value_on_the_command_line_exits_2_with_one_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "experiments", "run", "sft-full", "--profile", "smoke",
                           "--output-dir", str(out), "--set", "train.learning_rate=abc"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: --set train.learning_rate='abc': must be a number > 0"
    assert not out.exists()


def test_num_generations_1_is_refused_before_any_load_wandb_run_or_run_dir(tmp_path, tripwires):
    """Called as a library (runner.run), not only from the command line: the run itself validates first."""
    out = tmp_path / "run"
    resolved = resolve("grpo-p2", "smoke", output_dir=out, overrides={"grpo.num_generations": "1"})
    with pytest.raises(ExperimentError, match=r"grpo\.num_generations=1: must be an integer >= 2"):
        run(resolved)
    assert not (out / "experiment.json").exists() and not (out / "wandb_run_id").exists()
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="bf16 training is valid where CUDA is")
def test_trainer_argument_errors_surface_before_step_0_naming_the_field(tmp_path, capsys, tripwires):
    # transformers refuses bf16 training without a GPU, in TrainingArguments: today only after the step-0 evaluation.
    out = tmp_path / "run"
    assert main(["run", "sft-full", "--profile", "smoke", "--output-dir", str(out), "--set", "train.bf16=true"]) == 2
    err = capsys.readouterr().err
    assert "TrainingArguments refuses these settings (bf16 <- train.bf16=True)" in err and "bf16/gpu" in err, err
    assert not out.exists()


def test_paper_validates_every_run_before_the_first(tmp_path, monkeypatch, capsys):
    import experiments.runner

    monkeypatch.setenv("R1AQA_OUTPUTS", str(tmp_path))
    started = []
    monkeypatch.setattr(experiments.runner, "run", lambda resolved, resume=False: started.append(resolved))
    bad = REGISTRY["grpo-p3"]  # the table's last GRPO row
    monkeypatch.setitem(REGISTRY, "grpo-p3", dataclasses.replace(bad, grpo=dataclasses.replace(bad.grpo, beta=-1.0)))
    assert main(["paper", "--profile", "toy"]) == 2
    assert "experiment 'grpo-p3': grpo.beta=-1.0: must be a number >= 0" in capsys.readouterr().err
    assert started == []  # not even the direct row (the table's first) started


@pytest.mark.parametrize("profile", ["toy", "paper", "smoke"])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_experiment_validates(name, profile):
    validate(resolve(name, profile))


def test_logging_steps_reach_both_trainers():
    from experiments.trainer_arguments import grpo_arguments, sft_arguments, trainer_arguments

    for name in ("sft-full", "grpo-p2-lora"):
        exp = resolve(name, "toy", overrides={"train.logging_steps": "7"}).experiment
        assert trainer_arguments(exp, output_dir="unused", seed=0).logging_steps == 7
    # The builders under them too (the toy base's build calls sft_arguments without an experiment).
    exp = REGISTRY["grpo-p2"]
    train = dataclasses.replace(exp.train, logging_steps=3)
    assert grpo_arguments(train, exp.grpo, output_dir="x", seed=0).logging_steps == 3
    assert sft_arguments(train, output_dir="x", seed=0).logging_steps == 3
    steps = {p: resolve("grpo-p2", p).experiment.train.logging_steps for p in ("paper", "toy", "smoke")}
    assert steps == {"paper": 10, "toy": 10, "smoke": 1}  # toy: 16-19 short lines per run


def test_runs_written_before_logging_steps_read_back_as_every_step_and_still_match(tmp_path):
    resolved = resolve("sft-full", "toy", output_dir=tmp_path)
    stored = resolved.to_dict()
    del stored["experiment"]["train"]["logging_steps"]  # an experiment.json of an earlier version
    old = ResolvedRun.from_dict(stored)
    assert old.experiment.train.logging_steps == 1  # what those versions did (hard-coded)
    check_same_run(resolved, old)  # logging cadence alone does not make it another run


def test_prompt_3_evaluates_with_at_least_its_completion_length(tmp_path, monkeypatch):
    paper = resolve("grpo-p3", "paper").experiment
    assert paper.eval.max_new_tokens == 512 == paper.grpo.max_completion_length
    for profile in ("toy", "smoke"):  # their scaling satisfies the rule too
        exp = resolve("grpo-p3", profile).experiment
        assert exp.eval.max_new_tokens >= exp.grpo.max_completion_length
    short = dataclasses.replace(paper, eval=dataclasses.replace(paper.eval, max_new_tokens=256))
    with pytest.raises(ExperimentError) as e:
        check_fields(short)
    assert "eval.max_new_tokens=256 < grpo.max_completion_length=512" in str(e.value)
    assert "--set eval.max_new_tokens=512" in str(e.value)
    # Prompt <2> trains answer-only: its 256 stays.
    assert resolve("grpo-p2", "paper").experiment.eval.max_new_tokens == 256

    import experiments.runner

    seen = {}
    monkeypatch.setattr(experiments.runner, "evaluate_checkpoint", lambda *a, eval_spec, **kw: seen.update(
        tokens=eval_spec.max_new_tokens, source=eval_spec.decoding))  # fmt: skip
    base = ["eval", "--model", "some/model", "--benchmark", "b.json", "--output-dir", str(tmp_path)]
    expected = [
        (["--prompt", "p3"], 512),
        (["--prompt", "p2"], 256),
        (["--prompt", "p3", "--max-new-tokens", "99"], 99),
    ]
    for extra, tokens in expected:
        assert main([*base, *extra]) == 0
        assert seen == {"tokens": tokens, "source": "neutral"}
    assert main([*base, "--decoding", "checkpoint"]) == 0 and seen["source"] == "checkpoint"


def test_run_dtype_is_one_rule(monkeypatch):
    for cuda in (True, False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        on_gpu = "bfloat16" if cuda else "float32"
        assert run_dtype(None) == on_gpu  # direct, python -m experiments eval
        assert run_dtype(TrainSpec()) == on_gpu  # train.bf16=None
        assert run_dtype(TrainSpec(bf16=True)) == "bfloat16" and run_dtype(TrainSpec(bf16=False)) == "float32"


def test_evaluate_checkpoint_passes_the_decoding_source_and_dtype(tmp_path, monkeypatch):
    import models.evaluate
    from experiments.runner import evaluate_checkpoint

    seen = []
    monkeypatch.setattr(models.evaluate, "evaluate", lambda *a, decoding, **kw: seen.append(decoding))
    bench = write_mmau_benchmark(tmp_path / "b", n=2)
    spec = EvalSpec(batch_size=3, max_new_tokens=5, decoding="checkpoint")
    evaluate_checkpoint(
        "m",
        bench,
        None,
        tmp_path / "e",
        eval_spec=spec,
        loaded=(None, None),
        compute_dtype="bfloat16",
        version_label="unit",
    )
    (dec,) = seen
    assert (dec.source, dec.compute_dtype, dec.batch_size, dec.max_new_tokens) == ("checkpoint", "bfloat16", 3, 5)


def test_direct_evaluates_in_the_runs_dtype(tmp_path, monkeypatch):
    import experiments.runner

    monkeypatch.setenv("WANDB_MODE", "disabled")
    seen = {}

    def fake(*args, compute_dtype=None, eval_spec=None, **kwargs):
        seen.update(dtype=compute_dtype, source=eval_spec.decoding)
        raise Loaded

    monkeypatch.setattr(experiments.runner, "evaluate_checkpoint", fake)
    with pytest.raises(Loaded):
        experiments.runner.run_direct(resolve("direct", "smoke", output_dir=tmp_path / "d"))
    assert seen == {"dtype": run_dtype(None), "source": "neutral"}


@pytest.mark.parametrize("bf16", [True, False])
def test_step_0_evaluation_gets_the_runs_compute_dtype(bf16, tmp_path, monkeypatch):
    """Step 0 is evaluated before the trainer (and its bf16 autocast) exists; it must still decode in the run's dtype.

    Every later evaluation goes through the same evaluator and so the same DecodingConfig: capturing the one handed to
    the step-0 evaluation captures theirs. The run stops there (bf16 training itself needs a GPU).
    """
    from experiments.training import run_training
    from trainers.checkpoint_eval import CheckpointEvaluator

    monkeypatch.setenv("WANDB_MODE", "disabled")
    seen = []

    def capture(self, model, out_dir, step, record=True):
        seen.append((step, self.decoding))
        raise Loaded

    monkeypatch.setattr(CheckpointEvaluator, "evaluate_model", capture)
    overrides = {"train.bf16": str(bf16).lower(), "eval.decoding": "checkpoint"}
    resolved = resolve("sft-full", "smoke", output_dir=tmp_path / "r", overrides=overrides)
    with pytest.raises(Loaded):
        run_training(resolved)
    ((step, decoding),) = seen
    assert step == 0 and decoding.compute_dtype == ("bfloat16" if bf16 else "float32")
    assert decoding.source == "checkpoint"


def test_lr_schedulers_are_the_ones_transformers_runs_without_extra_arguments():
    from transformers import SchedulerType, TrainingArguments, get_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    def works(name: str) -> bool:
        try:
            TrainingArguments(output_dir="unused", lr_scheduler_type=name)
            get_scheduler(name, opt, num_warmup_steps=0, num_training_steps=10)
        except (ValueError, TypeError):
            return False
        return True

    assert {s.value for s in SchedulerType if works(s.value)} == set(LR_SCHEDULERS)


def test_several_problems_are_named_at_once_on_one_line():
    exp = resolve("sft-lora", "toy", overrides={"lora.r": "0", "eval.max_new_tokens": "0"}).experiment
    with pytest.raises(ExperimentError) as e:
        check_fields(exp)
    msg = str(e.value)
    assert "lora.r=0: must be an integer >= 1" in msg and "eval.max_new_tokens=0: must be an integer >= 1" in msg
    assert "\n" not in msg
    # A section the method does not use is refused rather than silently ignored.
    with pytest.raises(ExperimentError, match="grpo: set on a sft experiment"):
        check_fields(resolve("sft-full", "toy", overrides={"grpo.beta": "0.1"}).experiment)


@pytest.mark.parametrize("argv", [["run", "direct", "--seed", "-1"], ["run", "direct", "--seed", "x"],
                                  ["paper", "--seeds", "0", "-1"], ["run", "direct", "--seed", str(2**32)]])  # fmt: skip
def test_a_bad_seed_is_refused_before_anything_is_written(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("R1AQA_OUTPUTS", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        main([*argv, "--profile", "smoke"])
    assert e.value.code == 2
    assert "is not a seed: give a whole number from 0 to 4294967295" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no seed-1/experiment.json for a later run to "resume"


def test_a_bad_seed_is_refused_by_the_library_too(tmp_path, tripwires):
    out = tmp_path / "run"
    with pytest.raises(ExperimentError, match="seed -1: give a whole number"):
        run(resolve("direct", "smoke", seed=-1, output_dir=out))
    assert not out.exists()


@pytest.mark.parametrize("module", ["analysis.table2", "analysis.figures", "controls.silent"])
def test_an_unknown_profile_in_the_analysis_commands_lists_the_valid_ones(module, capsys):
    import importlib

    argv = ["fig3", "--profile", "smok"] if module == "analysis.figures" else ["--profile", "smok"]
    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'smok'" in err and "toy" in err and "paper" in err and "smoke" in err
