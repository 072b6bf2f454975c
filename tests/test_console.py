"""What a run prints and how its W&B run is filed (trainers/console.py, experiments/tracking.py).

One real smoke run of ``grpo-p2`` in a subprocess, its stdout and stderr merged into one stream as a terminal shows
them, is read by several tests: the W&B variables reach the offline run and its record, the W&B line at the start
and at the end, a progress bar and a summary on its own line for each checkpoint evaluation, one short line per
logging step instead of transformers' dict, and each repeated warning printed once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tqdm.auto import tqdm
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerControl, TrainerState

from analysis.runs import read_offline_runs
from data.run_files import WANDB_RUN_FILE
from data.schema import DataError
from tests.helpers import REPO
from trainers.console import CompactPrinterCallback, CompactProgressCallback, compact_line, install_compact_log

# `python -m experiments`, with the two console calls the run makes: show_each_warning_once() at the start and
# install_compact_log(trainer) once the trainer is built. Both are idempotent, so the test holds wherever
# experiments/ wires them in.
_RUN = """
import sys
from trainers.console import install_compact_log, show_each_warning_once
show_each_warning_once()
import trainers.grpo as grpo
build = grpo.build_grpo_trainer
def build_compact(*args, **kwargs):
    trainer = build(*args, **kwargs)
    install_compact_log(trainer)
    return trainer
grpo.build_grpo_trainer = build_compact
from experiments.__main__ import main
sys.exit(main(sys.argv[1:]))
"""

# A real GRPO log row (TRL 1.16, the smoke run's first step): 27 keys.
GRPO_ROW = {
    "loss": 0.0123, "grad_norm": 0.0421, "learning_rate": 1.5e-05, "num_tokens": 2456.0,
    "completions/mean_length": 8.0, "completions/min_length": 8.0, "completions/max_length": 8.0,
    "completions/clipped_ratio": 1.0, "completions/mean_terminated_length": 0.0,
    "completions/min_terminated_length": 0.0, "completions/max_terminated_length": 0.0,
    "rewards/accuracy/mean": 0.5, "rewards/accuracy/std": 0.5, "rewards/format/mean": 0.125,
    "rewards/format/std": 0.33, "reward": 0.625, "reward_std": 0.21, "frac_reward_zero_std": 0.0, "kl": 0.0012,
    "entropy": 6.68, "clip_ratio/low_mean": 0.0, "clip_ratio/high_mean": 0.0, "clip_ratio/region_mean": 0.0,
    "clip_ratio/low_min": 0.0, "clip_ratio/high_max": 0.0, "step_time": 0.25, "epoch": 0.033,
}  # fmt: skip


class SmokeRun:
    def __init__(self, out: Path, wandb_dir: Path, console: str):
        self.out, self.wandb_dir, self.console = out, wandb_dir, console


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke_world, tiny_dir) -> SmokeRun:
    """``grpo-p2`` on the smoke profile with WANDB_NAME/RUN_GROUP/TAGS/PROJECT set; the console as one stream."""
    root = tmp_path_factory.mktemp("console")
    out, wandb_dir = root / "run", root / "wandb"
    # Without WANDB_SERVICE: an in-process W&B run of this test session would otherwise serve this run too.
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env.update(WANDB_DIR=str(wandb_dir), PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1",
               WANDB_NAME="my run", WANDB_RUN_GROUP="my-group", WANDB_TAGS=" ablation, lr-sweep ",
               WANDB_PROJECT="my-project")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, "run", "grpo-p2", "--profile", "smoke", "--output-dir", str(out)],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    return SmokeRun(out, wandb_dir, proc.stdout)


def test_wandb_variables_reach_the_offline_run_and_its_record(smoke_run):
    tables = read_offline_runs(smoke_run.wandb_dir)
    assert not tables.problems and len(tables.runs) == 1
    run = tables.runs.iloc[0]
    assert run["name"] == "my run" and run["group"] == "my-group" and run["state"] == "finished"
    # The suite's tags first (analysis reads the profile as the second tag), then WANDB_TAGS, stripped.
    assert run["tags"] == ("grpo", "smoke", "p2", "model:tiny", "adhoc", "ablation", "lr-sweep")
    record = json.loads((smoke_run.out / WANDB_RUN_FILE).read_text())
    used = {"mode": "offline", "project": "my-project", "name": "my run", "group": "my-group",
            "tags": list(run["tags"]), "from_env": ["WANDB_PROJECT", "WANDB_NAME", "WANDB_RUN_GROUP", "WANDB_TAGS"]}  # fmt: skip
    assert {k: record[k] for k in used} == used and run["config"]["wandb"] == used
    assert record["id"] == run["run_id"] == (smoke_run.out / "wandb_run_id").read_text().strip()
    folder = Path(record["run_folder"])
    assert folder.is_dir() and folder.parent.parent == smoke_run.wandb_dir and record["run_folders"] == [str(folder)]
    assert any(folder.glob(f"run-{run['run_id']}.wandb"))


def test_the_wandb_folder_and_sync_command_are_printed_at_the_start_and_the_end(smoke_run):
    record = json.loads((smoke_run.out / WANDB_RUN_FILE).read_text())
    lines = smoke_run.console.splitlines()
    sync = f"wandb sync {record['run_folder']}"
    start = next(i for i, line in enumerate(lines) if line.startswith("W&B: offline run"))
    assert record["run_folder"] in lines[start] and sync in lines[start]
    first_eval = next(i for i, line in enumerate(lines) if "[step 0]" in line)
    assert start < first_eval  # before anything is computed
    end = [i for i, line in enumerate(lines) if line.startswith(f"W&B: offline run {record['id']} finished")]
    assert end and end[0] > max(i for i, line in enumerate(lines) if "[step 4]" in line) and sync in lines[end[0]]


def test_each_checkpoint_evaluation_shows_a_bar_and_its_summary_on_its_own_line(smoke_run):
    out = smoke_run.console
    summaries = [m.start() for m in re.finditer(r"\[step \d+\] test/avg=", out)]
    assert len(summaries) == 3  # steps 0, 2 and 4
    for at in summaries:
        # At a line start: after a newline, or after the carriage return that ends the clearing of a live bar,
        # never after a bar's text; and the line ends there.
        assert out[at - 1] in "\r\n", repr(out[max(0, at - 80) : at + 40])
        assert re.match(r"\[step \d+\] test/avg=[\d.]+, mmar/avg=[\d.]+, val/avg=[\d.]+\n", out[at:])
    for before, at in zip(summaries, summaries[1:], strict=False):  # each evaluation (steps 2, 4) has its bars
        # (cleared once finished, keep_bar=False: the summary line stays, the bars do not)
        assert "eval test: " in out[before:at] and "eval val: " in out[before:at]
    assert "95% CI" not in out  # the accuracy tables stay in the metrics files


def test_the_checkpoint_summary_is_printed_above_a_live_bar_and_each_set_shows_a_bar(tmp_path, monkeypatch, capsys):
    from models.evaluate import DecodingConfig
    from trainers import checkpoint_eval

    calls = []

    def fake_evaluate(model, processor, items, out_dir, **kwargs):
        calls.append(kwargs)
        return {"accuracy": {"sound": 40.0, "avg": 50.0}, "format_rate": 100.0}

    monkeypatch.setattr(checkpoint_eval, "evaluate", fake_evaluate)
    sets = [checkpoint_eval.EvalSet("test", []), checkpoint_eval.EvalSet("val", [])]
    evaluator = checkpoint_eval.CheckpointEvaluator(None, sets, prompt_id="p2", decoding=DecodingConfig(),
                                                    run_dir=tmp_path)  # fmt: skip
    bar = tqdm(total=4, desc="train", file=sys.stdout)  # the training bar, live during the evaluation
    bar.update(2)
    evaluator.evaluate_model(torch.nn.Linear(2, 2), tmp_path / "checkpoint-2" / "eval", 2)
    bar.close()
    out = capsys.readouterr().out
    at = out.index("[step 2] test/avg=50.0, val/avg=50.0\n")
    assert out[at - 1] == "\r", repr(out)  # the bar's line was cleared first: the summary is not appended to it
    # a bar, cleared when done, not the table
    assert [(c["progress"], c["print_table"], c["keep_bar"]) for c in calls] == [(True, False, False)] * 2


def test_each_logging_step_prints_one_short_line(smoke_run):
    lines = smoke_run.console.replace("\r", "\n").splitlines()
    steps = [line for line in lines if re.match(r"step \d/4  loss ", line)]
    assert len(steps) == 4 and all("reward " in line and len(line) < 120 for line in steps)
    assert not any("{'loss'" in line or "'reward_std'" in line for line in lines)  # no dict rows
    assert sum(line.startswith("training done: step 4/4") for line in lines) == 1


def test_each_repeated_warning_is_printed_once(smoke_run):
    # Without show_each_warning_once transformers' is_gradient_checkpointing FutureWarning prints at the first
    # generation and again after each save (the Trainer's catch_warnings resets Python's registry), and W&B's "URL
    # not available" at every save. Both are dropped as pure noise (raised inside TRL/PEFT and W&B).
    assert "`is_gradient_checkpointing` is deprecated" not in smoke_run.console
    assert "URL not available in offline run" not in smoke_run.console  # dropped: pure noise (trainers/console.py)


_WARN = """
import logging, warnings
import wandb
from transformers.utils import logging as hf_logging
from trainers.console import show_each_warning_once
show_each_warning_once()
show_each_warning_once()  # idempotent: one wrapper, not two
for _ in range(3):
    warnings.warn("python warning", FutureWarning)
    with warnings.catch_warnings():  # what the Trainer does around its saves: resets the once-per-location registry
        pass
    hf_logging.get_logger("transformers.x").warning("transformers warning")
    logging.getLogger("trl.x").warning("trl warning")
    wandb.termwarn("wandb warning")
    wandb.termwarn("URL not available in offline run")
    warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
warnings.warn("a second FutureWarning", FutureWarning)
"""


def test_show_each_warning_once_covers_python_warnings_logging_and_wandb():
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "false"}
    proc = subprocess.run([sys.executable, "-c", _WARN], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    for message in ("python warning", "transformers warning", "trl warning", "wandb warning"):
        assert err.count(f"{message}\n") == 1, err
    assert "a second FutureWarning" in err and "URL not available" not in err
    assert "is_gradient_checkpointing" not in err  # dropped (trainers.console.DROPPED)


@pytest.fixture()
def trainer(tmp_path) -> Trainer:
    return Trainer(model=torch.nn.Linear(2, 2), args=TrainingArguments(output_dir=str(tmp_path), report_to=[]))


def test_compact_log_replaces_the_dict_printing_and_keeps_the_bar(trainer, capsys):
    install_compact_log(trainer)
    install_compact_log(trainer)  # idempotent: still one progress callback
    progress = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, ProgressCallback)]
    assert [type(cb) for cb in progress] == [CompactProgressCallback]
    state = TrainerState(max_steps=40, global_step=3)
    handler, control = trainer.callback_handler, TrainerControl()
    handler.on_train_begin(trainer.args, state, control)
    capsys.readouterr()
    handler.on_log(trainer.args, state, control, dict(GRPO_ROW))
    out = capsys.readouterr().out
    assert out == "step  3/40  loss 0.0123  reward 0.625+/-0.210  kl 0.0012  len 8.0  lr 1.50e-05  grad 0.0421\n"
    handler.on_log(trainer.args, state, control, {"loss": 6.73, "grad_norm": 8.863, "learning_rate": 2e-4})
    assert capsys.readouterr().out == "step  3/40  loss 6.73  lr 2.00e-04  grad 8.86\n"  # SFT: the keys it has
    handler.on_train_end(trainer.args, state, control)


def test_compact_log_without_tqdm_replaces_the_printer(tmp_path, capsys):
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], disable_tqdm=True)
    trainer = Trainer(model=torch.nn.Linear(2, 2), args=args)
    install_compact_log(trainer)
    assert [type(cb) for cb in trainer.callback_handler.callbacks if isinstance(cb, PrinterCallback)] == [
        CompactPrinterCallback
    ]
    trainer.callback_handler.on_log(args, TrainerState(max_steps=4, global_step=4), TrainerControl(),
                                    {"train_runtime": 2.0, "train_loss": 0.5, "epoch": 0.1})  # fmt: skip
    assert capsys.readouterr().out == "training done: step 4/4 in 2.0 s, mean loss 0.5\n"


def test_a_row_without_the_usual_keys_prints_nothing():
    assert compact_line({"epoch": 0.5, "step_time": 1.0}, 2, 4) is None


def test_a_resumed_run_keeps_its_wandb_names_unless_the_variables_are_set(tmp_path, monkeypatch, capsys):
    from experiments.runner import resolve
    from experiments.tracking import tracked_run

    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    for var in ("WANDB_NAME", "WANDB_RUN_GROUP", "WANDB_TAGS", "WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    resolved = resolve("grpo-p2", "smoke", 0, tmp_path / "run")

    def session(resume: bool, **variables: str) -> dict:
        with monkeypatch.context() as m:
            for var, value in variables.items():
                m.setenv(var, value)
            with tracked_run(resolved, resume=resume) as tracker:
                tracker.log({"train/global_step": 0, "x": 1.0})
        return json.loads((resolved.output_dir / WANDB_RUN_FILE).read_text())

    first = session(False, WANDB_NAME="first", WANDB_RUN_GROUP="g1", WANDB_TAGS="a", WANDB_PROJECT="p1")
    assert (first["name"], first["group"], first["tags"][-1], first["project"]) == ("first", "g1", "a", "p1")
    kept = session(True)
    assert (kept["name"], kept["group"], kept["tags"], kept["project"]) == ("first", "g1", first["tags"], "p1")
    assert kept["from_env"] == [] and kept["id"] == first["id"]
    changed = session(True, WANDB_NAME="second", WANDB_TAGS="b", WANDB_PROJECT="p2")
    assert (changed["name"], changed["group"], changed["tags"][-1]) == ("second", "g1", "b")
    assert changed["project"] == "p1"  # one run's history stays in one project
    out = capsys.readouterr().out
    assert "WANDB_PROJECT=p2 ignored: the resumed run belongs to project p1" in out
    # One local folder per session; the end line's sync command names them all.
    assert len(changed["run_folders"]) == 3 and all(Path(f).is_dir() for f in changed["run_folders"])
    assert f"wandb sync {' '.join(changed['run_folders'])}" in out.splitlines()[-1]
    runs = read_offline_runs(tmp_path / "wandb").runs
    assert list(runs["run_id"]) == [first["id"]] and runs.iloc[0]["name"] == "second"


def test_bad_wandb_tags_are_refused_naming_the_variable(monkeypatch):
    from experiments.tracking import wandb_env_tags

    monkeypatch.setenv("WANDB_TAGS", "a,,b")
    with pytest.raises(DataError, match=r"WANDB_TAGS='a,,b'.*#2 ''"):
        wandb_env_tags()
    monkeypatch.setenv("WANDB_TAGS", " a , b ")
    assert wandb_env_tags() == ["a", "b"]
