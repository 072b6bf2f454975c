"""A small, fully known set of Table 2 runs for the analysis tests: real offline W&B runs plus their files on disk.

The runs are written with wandb itself (offline), the way the suite's trainers log (experiments/tracking.py,
trainers/checkpoint_eval.py, experiments/training.py): group = experiment, name ``<experiment>-toy-s<seed>``, tags
[method, profile, prompt] (+ lora, + adhoc), the resolved experiment as config, one history row per optimizer step
(``train/...``), one evaluation row per checkpoint (``eval/test/...``, ``eval/val/...``; step 0 = the base model,
then every save, then the final model again at the last step), and under ``config.output_dir`` the saved predictions
(``checkpoint-<step>/eval/{test,val}/predictions.json``, ``final/``, ``predictions.json``, ``metrics.json``), the
silent-audio controls where controls.silent writes them (``checkpoint-<step>/eval/test-silent/``,
``final/test-silent/``, ``silent/test/``; see :attr:`RunSpec.silent`), the
run directory's own record of the evaluations (``checkpoint_evals.jsonl``, one line per evaluation as
trainers/checkpoint_eval.py and experiments/runner.py append them, written before the row is logged),
``wandb_run_id`` and, for runs that completed, ``run_complete.json``.

Every test accuracy logged is computed from the prediction files written beside it, so the two always agree.
Each ``metrics.json`` is written as this version of data/evaluate.py writes it on CPU: ``dtype`` (float32), the
``decoding`` source (neutral, greedy), and the ``truncation_rate`` / ``missing_answer_rate`` of its predictions, whose
records carry ``hit_limit`` and ``n_new_tokens``: some wrong outputs are cut at the token limit (no answer tag),
and grpo-p3's have one answer without its tag (a missing answer that did not hit the limit); see
:func:`predictions`.

What is in it (profile "toy", benchmark ``toy-1a2b3c4d``, 20 test items, 10 optimizer steps, saves every 4):

- direct s0 (and an earlier direct s0 run that the later one supersedes);
- sft-full s0 (and a later *failed* sft-full s0 run); sft-lora s0 (whose last checkpoint was not saved: its final
  model exists only as ``predictions.json``); grpo-p2 s0 and s1; grpo-p3 s0;
- a later ad hoc grpo-p2 s0 run with excellent numbers, which every report must ignore;
- silent-audio controls at every step of the selected runs but grpo-p3's (the reports' n/a case); the test items
  mix 2 and 4 choices, so the chance level is 30%.

Use: ``fixture = analysis_fixture(tmp_path_factory)`` (written once per test process), or
``write_analysis_fixture(path)`` for a fresh copy; ``write_runs(root, specs)`` writes other runs (e.g. a
:class:`RunSpec` with ``lost_in_wandb`` steps: on disk, never logged to W&B, as after a kill).
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from analysis.runs import RunTables
from data.io import write_json_atomic
from data.scoring import compute_metrics, extract_answer
from experiments.profiles import PROFILES

PROFILE = "toy"
VERSION = "toy-1a2b3c4d"
MAX_STEPS = 10
MAX_NEW_TOKENS = 32  # the fixture experiments' eval.max_new_tokens
TASK_OF = ["sound"] * 7 + ["music"] * 7 + ["speech"] * 6
WORDS = ["dog", "cat", "bird", "cow", "piano", "violin", "drum", "flute", "man", "woman", "child", "robot"]


def items() -> list[dict[str, Any]]:
    """20 MMAU-format test items (7 sound, 7 music, 6 speech): every fifth has 2 choices, the others 4, so the
    chance level (the mean of 1 / number of choices) is (4 * 1/2 + 16 * 1/4) / 20 = 30%."""
    out = []
    for i, task in enumerate(TASK_OF):
        base = 4 * (i % 3)
        choices = WORDS[base : base + (2 if i % 5 == 0 else 4)]
        out.append({
            "id": f"q{i:02d}", "audio_id": f"./test-mini-audios/q{i:02d}.wav", "question": f"Which one is heard ({i})?",
            "choices": choices, "answer": choices[i % len(choices)], "dataset": "fixture", "task": task,
            "split": "test-mini",
            "category": "fixture", "sub-category": f"{task}-kind", "difficulty": ["easy", "medium", "hard"][i % 3],
        })  # fmt: skip
    return out


@dataclass(frozen=True)
class Eval:
    """One evaluation row: the step, how many of the 20 test items are right, and the validation accuracy (%)."""

    step: int
    k_test: int
    val: float | None = None
    checkpoint: bool = True  # False: the final model only (no checkpoint-<step>/ directory)


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    experiment: str
    method: str
    prompt: str
    seed: int
    evals: tuple[Eval, ...]
    lora: bool = False
    adhoc: bool = False
    failed: bool = False
    out_name: str = ""  # run directory name (default seed<N>)
    lost_in_wandb: tuple[int, ...] = ()  # evaluations of these steps are on disk but never logged to W&B (a kill)
    # Silent-audio controls written (as controls.silent writes them): (step, test items right with silent audio).
    silent: tuple[tuple[int, int], ...] = ()
    profile: str = PROFILE
    base_model: str = "outputs/cache/toy-instruct-fixture"  # the W&B config's base_model

    @property
    def table2_row(self) -> str:
        from analysis.paper_numbers import PAPER_ROWS

        return PAPER_ROWS[self.experiment].label


def _trained(step_k_val: list[tuple[int, int, float]], final_checkpoint: bool = True) -> tuple[Eval, ...]:
    """Evaluations at the saves (0, 4, 8, 10) plus the final model at step 10 (identical to checkpoint-10)."""
    evals = [Eval(s, k, v) for s, k, v in step_k_val]
    last = evals[-1]
    if not final_checkpoint:  # the last save did not happen: only the final model's evaluation at step 10
        evals[-1] = Eval(last.step, last.k_test, last.val, checkpoint=False)
        return tuple(evals)
    return (*evals, Eval(last.step, last.k_test, last.val, checkpoint=False))


# In writing order (which is also "latest" order). Expected checkpoints (best-val / final / best-test):
#   sft-full s0: 4 (val tie 55 at 4 and 8 -> earliest) / 10 / 8;  sft-lora s0: 10 / 10 / 8 (final not saved)
#   grpo-p2 s0: 4 / 10 / 10;  grpo-p2 s1: 8 / 10 / 8;  grpo-p3 s0: 8 / 10 / 8;  direct: 0 always.
# Silent audio at the best-val checkpoints (of 20): direct 7 (gain 40 - 35 = +5), sft-full 6 (50 - 30 = +20), sft-lora
# 9 (60 - 45 = +15, in final/test-silent), grpo-p2 9 and 12 (65 - 45, 85 - 60: +22.50 ± 3.54); grpo-p3 has none.
RUNS: tuple[RunSpec, ...] = (
    RunSpec("dir0old", "direct", "direct", "p2", 0, (Eval(0, 7),), out_name="seed0-old"),
    RunSpec("dir0", "direct", "direct", "p2", 0, (Eval(0, 8),), silent=((0, 7),)),
    RunSpec("sftf0", "sft-full", "sft", "p1", 0, _trained([(0, 8, 40.0), (4, 10, 55.0), (8, 12, 55.0), (10, 11, 50.0)]),
            silent=((0, 7), (4, 6), (8, 7), (10, 7))),
    RunSpec("sftl0", "sft-lora", "sft", "p1", 0,
            _trained([(0, 8, 40.0), (4, 11, 50.0), (8, 13, 60.0), (10, 12, 65.0)], final_checkpoint=False), lora=True,
            silent=((0, 7), (4, 7), (8, 8), (10, 9))),
    RunSpec("grpo2s0", "grpo-p2", "grpo", "p2", 0,
            _trained([(0, 8, 40.0), (4, 13, 70.0), (8, 15, 65.0), (10, 16, 60.0)]),
            silent=((0, 7), (4, 9), (8, 10), (10, 10))),
    RunSpec("grpo2s1", "grpo-p2", "grpo", "p2", 1,
            _trained([(0, 8, 40.0), (4, 12, 60.0), (8, 17, 75.0), (10, 14, 70.0)]),
            silent=((0, 7), (4, 8), (8, 12), (10, 11))),
    RunSpec("grpo3s0", "grpo-p3", "grpo", "p3", 0,
            _trained([(0, 8, 40.0), (4, 12, 60.0), (8, 14, 65.0), (10, 13, 55.0)])),
    RunSpec("sftf0x", "sft-full", "sft", "p1", 0, _trained([(0, 8, 40.0), (4, 15, 70.0)]), failed=True,
            out_name="seed0-failed"),
    RunSpec("grpo2s0adhoc", "grpo-p2", "grpo", "p2", 0,
            _trained([(0, 8, 40.0), (4, 20, 99.0), (8, 20, 99.0), (10, 20, 99.0)]), adhoc=True, out_name="seed0-adhoc"),
)  # fmt: skip

EXPECTED_STEPS: dict[str, dict[tuple[str, int], int]] = {
    "best-val": {("direct", 0): 0, ("sft-full", 0): 4, ("sft-lora", 0): 10, ("grpo-p2", 0): 4, ("grpo-p2", 1): 8,
                 ("grpo-p3", 0): 8},
    "final": {("direct", 0): 0, ("sft-full", 0): 10, ("sft-lora", 0): 10, ("grpo-p2", 0): 10, ("grpo-p2", 1): 10,
              ("grpo-p3", 0): 10},
    "best-test": {("direct", 0): 0, ("sft-full", 0): 8, ("sft-lora", 0): 8, ("grpo-p2", 0): 10, ("grpo-p2", 1): 8,
                  ("grpo-p3", 0): 8},
}  # fmt: skip
IGNORED_RUNS = ("dir0old", "sftf0x", "grpo2s0adhoc")


def predictions(spec: RunSpec, ev: Eval, split: str = "test") -> list[dict[str, Any]]:
    """Prediction records of one evaluation: ``k`` items right, chosen by a generator seeded with (run, step, split);
    ``split`` "silent" is the test set with silent audio (``ev.k_test`` right).

    The same (run, step) always gives the same answers, so checkpoint-10 and the final model agree. Of the wrong
    items, the first ``(step // 4 + seed) % 3`` were cut at the token limit (``hit_limit``, no answer tag: scored
    on the raw text, as the evaluator does) and, for Prompt <3> runs, the next one answered without the tag.
    """
    records = items()
    k = ev.k_test if split in ("test", "silent") else round((ev.val or 0.0) * len(records) / 100)
    rng = random.Random(f"{spec.run_id}/{ev.step}/{split}")
    right = set(rng.sample(range(len(records)), k))
    wrong_items = [i for i in range(len(records)) if i not in right]
    n_cut = min(len(wrong_items), (ev.step // 4 + spec.seed) % 3)
    cut = set(wrong_items[:n_cut])
    bare = set(wrong_items[n_cut : n_cut + (1 if spec.prompt == "p3" else 0)])
    out = []
    for i, rec in enumerate(records):
        wrong = next(c for c in rec["choices"] if c != rec["answer"])
        output = rec["answer"] if i in right else wrong
        raw, n_new = f"<answer>{output}</answer>", 8
        if i in cut:
            raw, n_new = "<think>The sound rises, then it", MAX_NEW_TOKENS
        elif i in bare:
            raw = output
        prediction = extract_answer(raw)
        out.append({**rec, "model_output": prediction, "model_prediction": prediction, "raw_output": raw,
                    "n_new_tokens": n_new, "hit_limit": i in cut})  # fmt: skip
    return out


def _pct(flags: list[bool]) -> float:
    return round(100.0 * sum(flags) / len(flags), 2)


def _metrics(records: list[dict[str, Any]], audio_mode: str = "real") -> dict[str, Any]:
    from data.scoring import mmau_correct

    rows = [
        {"task": r["task"], "difficulty": r["difficulty"], "sub_category": r["sub-category"],
         "correct": mmau_correct(r["model_output"], r["answer"], r["choices"])}
        for r in records
    ]  # fmt: skip
    metrics = compute_metrics(rows)
    metrics["format_rate"] = _pct(["<answer>" in r["raw_output"] for r in records])
    metrics["benchmark"] = {"version": VERSION, "n_items": len(records)}
    metrics["audio_mode"] = audio_mode
    # As data/evaluate.py records them (float32 compute on CPU, neutral greedy decoding).
    metrics["dtype"] = {"compute": "float32", "weights": "float32"}
    effective = {"do_sample": False, "num_beams": 1, "max_new_tokens": MAX_NEW_TOKENS}
    metrics["decoding"] = {
        "source": "neutral",
        "greedy": True,
        "max_new_tokens": MAX_NEW_TOKENS,
        "effective": effective,
    }
    metrics["truncation_rate"] = _pct([r["hit_limit"] for r in records])
    metrics["missing_answer_rate"] = _pct(["</answer>" not in r["raw_output"] for r in records])  # cut or bare
    return metrics


def _eval_row(spec: RunSpec, ev: Eval, out: Path, where: Path | None) -> dict[str, Any]:
    """Write the evaluation files of one step (test, and val for trained runs) and return its W&B log row."""
    row: dict[str, Any] = {"train/global_step": ev.step}
    for split in ("test", "val") if spec.method != "direct" else ("test",):
        records = predictions(spec, ev, split)
        metrics = _metrics(records)
        if where is not None:
            write_json_atomic(where / split / "predictions.json", records)
            write_json_atomic(where / split / "metrics.json", metrics)
        if split == "test":
            row.update({f"eval/test/{t}": v for t, v in metrics["accuracy"].items()})
            row["eval/test/format_rate"] = metrics["format_rate"]
            final_metrics = metrics
        else:
            row.update({"eval/val/avg": ev.val, "eval/val/format_rate": metrics["format_rate"]})  # no per-task keys
    if spec.method == "direct":
        write_json_atomic(out / "predictions.json", predictions(spec, ev))
        write_json_atomic(out / "metrics.json", final_metrics)
    return row


def _config(spec: RunSpec, out: Path) -> dict[str, Any]:
    trained = spec.method != "direct"
    experiment = {
        "name": spec.experiment, "method": spec.method, "prompt": spec.prompt, "description": "fixture",
        "train": {"learning_rate": 1e-3, "max_steps": MAX_STEPS, "save_every": 4} if trained else None,
        "lora": {"r": 8, "alpha": 16} if spec.lora else None,
        "grpo": {"num_generations": 8, "beta": 0.04} if spec.method == "grpo" else None,
        "eval": {"batch_size": 64, "max_new_tokens": MAX_NEW_TOKENS, "at_start": True},
        "table2_row": spec.table2_row,
    }  # fmt: skip
    config = {
        "experiment": experiment, "profile": spec.profile, "profile_model": PROFILES[spec.profile].model, "seed": spec.seed,
        "adhoc": spec.adhoc, "output_dir": str(out), "base_model": spec.base_model,
    }  # fmt: skip
    if trained:  # a few of the many Hugging Face TrainingArguments keys the WandbCallback adds
        config.update({"learning_rate": 1e-3, "max_steps": MAX_STEPS, "save_steps": 4, "lr_scheduler_type": "linear"})
    return config


def _train_row(spec: RunSpec, step: int, rng: random.Random) -> dict[str, Any]:
    progress = step / MAX_STEPS
    row: dict[str, Any] = {"train/global_step": step, "train/learning_rate": 1e-3 * (1 - progress),
                           "train/epoch": progress, "train/grad_norm": 1.0 + rng.random()}  # fmt: skip
    if spec.method == "sft":
        row["train/loss"] = 2.0 * math.exp(-2.5 * progress) + 0.2 * rng.random()
    else:
        acc = min(1.0, 0.35 + 0.45 * progress + 0.15 * (rng.random() - 0.5))
        fmt = min(1.0, 0.85 + 0.15 * progress - 0.05 * rng.random())
        row.update({
            "train/loss": 0.01 * rng.random(), "train/reward": acc + fmt, "train/reward_std": 0.5 * rng.random(),
            "train/rewards/accuracy/mean": acc, "train/rewards/format/mean": fmt, "train/kl": 0.01 * step,
            "train/entropy": 1.0 - 0.5 * progress, "train/frac_reward_zero_std": 0.3 * rng.random(),
            "train/completions/mean_length": 9.0 + rng.random(),
        })  # fmt: skip
    return row


def _write_silent(spec: RunSpec, out: Path, step: int, k: int, *, checkpoint: bool) -> None:
    """A silent-audio control where controls.silent writes it: ``silent/test/`` for direct, else beside the step's
    test evaluation (``checkpoint-<step>/eval/test-silent/``, or ``final/test-silent/`` without a checkpoint)."""
    if spec.method == "direct":
        where = out / "silent" / "test"
    else:
        where = (out / f"checkpoint-{step}" / "eval" if checkpoint else out / "final") / "test-silent"
    records = predictions(spec, Eval(step, k), "silent")
    write_json_atomic(where / "predictions.json", records)
    write_json_atomic(where / "metrics.json", _metrics(records, audio_mode="silent"))


@dataclass
class AnalysisFixture:
    root: Path
    wandb_dir: Path
    runs: dict[str, RunSpec] = field(default_factory=dict)
    run_dirs: dict[str, Path] = field(default_factory=dict)


def _write_run(spec: RunSpec, root: Path, runs_dir: Path) -> Path:
    import wandb

    out = runs_dir / spec.profile / spec.experiment / (spec.out_name or f"seed{spec.seed}")
    out.mkdir(parents=True, exist_ok=True)
    tags = (
        [spec.method, spec.profile, spec.prompt] + (["lora"] if spec.lora else []) + (["adhoc"] if spec.adhoc else [])
    )
    settings = wandb.Settings(
        x_disable_stats=True, x_disable_meta=True, console="off", save_code=False, disable_git=True,
        disable_job_creation=True, silent=True,
    )  # fmt: skip
    run = wandb.init(
        project="r1-aqa-fixture", group=spec.experiment, name=f"{spec.experiment}-{spec.profile}-s{spec.seed}",
        tags=tags,
        config=_config(spec, out), dir=str(root), mode="offline", id=spec.run_id, resume="allow", settings=settings,
    )  # fmt: skip
    run.define_metric("train/global_step")
    run.define_metric("*", step_metric="train/global_step", step_sync=True)
    (out / "wandb_run_id").write_text(spec.run_id + "\n")
    exit_code = 1

    def log_eval(row: dict[str, Any], where: Path) -> None:
        with (out / "checkpoint_evals.jsonl").open("a", encoding="utf-8") as sink:  # the evaluator's own record
            sink.write(json.dumps({"step": row["train/global_step"], "dir": str(where), **row}) + "\n")
        if row["train/global_step"] not in spec.lost_in_wandb:
            run.log(row)

    try:
        rng = random.Random(spec.run_id)
        evals = {ev.step: ev for ev in spec.evals if ev.checkpoint}
        final = [ev for ev in spec.evals if not ev.checkpoint]
        if spec.method == "direct":
            log_eval(_eval_row(spec, spec.evals[0], out, None), out)
        else:
            last_step = max(ev.step for ev in spec.evals)
            for step in range(0, last_step + 1):
                if step > 0:
                    run.log(_train_row(spec, step, rng))
                if step in evals:  # the evaluator runs right after each save (step 0: before training)
                    where = out / f"checkpoint-{step}" / "eval"
                    log_eval(_eval_row(spec, evals[step], out, where), where)
            run.log({"train/global_step": last_step, "train_runtime": 1.5, "train_loss": 0.5})
            for ev in final:
                log_eval(_eval_row(spec, ev, out, out / "final"), out / "final")
                for name in ("predictions.json", "metrics.json"):
                    (out / name).write_bytes((out / "final" / "test" / name).read_bytes())
        for step, k in spec.silent:
            _write_silent(spec, out, step, k, checkpoint=step in evals)
        run.summary["final/step"] = spec.evals[-1].step
        run.summary["benchmark_version"] = VERSION
        exit_code = 0 if not spec.failed else 1
    finally:
        run.finish(exit_code=exit_code)
    if not spec.failed:
        accuracy = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["accuracy"]
        write_json_atomic(out / "run_complete.json", {"accuracy": accuracy})
    return out


def write_runs(root: Path, specs: tuple[RunSpec, ...] | list[RunSpec] = RUNS) -> AnalysisFixture:
    """Write the runs ``specs`` under ``root`` (W&B files in ``root/wandb``, run folders in ``root/runs``)."""
    import wandb

    fixture = AnalysisFixture(root=root, wandb_dir=root / "wandb")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            mp.setenv(var, str(root))
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        for spec in specs:
            fixture.runs[spec.run_id] = spec
            fixture.run_dirs[spec.run_id] = _write_run(spec, root, root / "runs")
    wandb.teardown()  # stop the wandb-core service this process started
    return fixture


def write_analysis_fixture(root: Path) -> AnalysisFixture:
    """Write every run of :data:`RUNS` under ``root`` (W&B files in ``root/wandb``, run folders in ``root/runs``)."""
    return write_runs(root, RUNS)


_CACHE: dict[str, AnalysisFixture] = {}


def analysis_fixture(tmp_path_factory: pytest.TempPathFactory) -> AnalysisFixture:
    """The fixture runs, written once per test process (both analysis test modules share them)."""
    if "runs" not in _CACHE:
        _CACHE["runs"] = write_analysis_fixture(tmp_path_factory.mktemp("analysis_runs"))
    return _CACHE["runs"]


# --------------------------------------------------------------------------------------------------------------
# Variants for tests: the session's fixture is never modified; a test edits copies


def with_config(tables: RunTables, run_id: str, change: Callable[[dict[str, Any]], None]) -> RunTables:
    """A copy of ``tables`` whose run ``run_id`` has its config changed by ``change`` (in place on a copy)."""
    configs = []
    for rid, config in zip(tables.runs["run_id"], tables.runs["config"], strict=True):
        config = copy.deepcopy(config)
        if rid == run_id:
            change(config)
        configs.append(config)
    runs = tables.runs.copy()
    runs["config"] = configs
    return RunTables(runs, tables.history, list(tables.problems))


def moved(tables: RunTables, run_id: str, run_dir: Path | None) -> RunTables:
    """The run's config pointing at ``run_dir`` (None: no output_dir in the config at all)."""

    def change(config: dict[str, Any]) -> None:
        if run_dir is None:
            config.pop("output_dir")
        else:
            config["output_dir"] = str(run_dir)

    return with_config(tables, run_id, change)


def copy_run_dir(fx: AnalysisFixture, run_id: str, tmp_path: Path) -> Path:
    """A copy of run ``run_id``'s directory under ``tmp_path`` to damage or edit (then point the run at it: moved)."""
    return Path(shutil.copytree(fx.run_dirs[run_id], tmp_path / f"copy-{run_id}"))
