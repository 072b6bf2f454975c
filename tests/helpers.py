"""Test helpers: a session-wide tiny model and small synthetic audio items made on the fly (nothing downloaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from data.audio import write_wav

TEST_WORDS = ["high", "low", "loud", "quiet", "one", "two", "three", "Is", "the", "note", "or", "How", "many",
              "beeps", "What", "Please", "choose", "answer", "from", "following", "options", "Output", "final",
              "in", "thinking", "process", "and", "You", "are", "a", "helpful", "assistant", "system", "user",
              "Audio", "think"]  # fmt: skip


def tone(freq: float, seconds: float, level: float = 0.3, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_mmau_benchmark(root: Path, n: int = 10, *, seed: int = 0) -> Path:
    """An MMAU-format question file with ``n`` items and real clips of varying length under ``root``."""
    rng = np.random.default_rng(seed)
    records = []
    tasks = ["sound", "music", "speech"]
    for i in range(n):
        high = bool(i % 2)
        seconds = float(rng.uniform(0.5, 2.0))
        item_id = f"item{i:03d}"
        write_wav(root / "test-mini-audios" / f"{item_id}.wav", tone(900 if high else 200, seconds))
        choices = ["high", "low"] if i % 3 else ["low", "high", "loud"]
        records.append({
            "id": item_id, "audio_id": f"./test-mini-audios/{item_id}.wav",
            "question": "Is the note high or low?" if i % 4 else "How high is the note, high or low?",
            "choices": choices, "answer": "high" if high else "low", "dataset": "unit", "task": tasks[i % 3],
            "split": "test-mini", "category": "pitch", "sub-category": "note height",
            "difficulty": ["easy", "medium", "hard"][i % 3],
        })  # fmt: skip
    path = root / "bench.json"
    path.write_text(json.dumps(records, indent=1))
    return path


REPO = Path(__file__).resolve().parent.parent


def launch_experiments(
    config: str, args: list[str], cwd: Path, wandb_dir: Path, *, kill_at: str | None = None
) -> float:
    """``accelerate launch --config_file launch/<config>.yaml -m experiments ARGS`` on the CPU (no GPU visible);
    fails the test with the processes' stderr unless they succeed. Returns the seconds it took.

    ``kill_at`` (e.g. ``"saved:2"``, see ``tests/kill_at.py``): the main process is SIGKILLed at that moment, the
    launcher ends the others, and the launch must fail instead."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "WANDB_DIR": str(wandb_dir), "PYTHONPATH": str(REPO)}
    env.pop("WANDB_SERVICE", None)  # never the pytest process's W&B service: the run starts its own
    target = ["-m", "experiments"] if kill_at is None else [str(REPO / "tests" / "kill_at.py"), kill_at]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "launch" / f"{config}.yaml"),
           *target, *args]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, start_new_session=True)
    if kill_at is None:
        assert proc.returncode == 0, proc.stderr[-4000:]
    else:
        assert proc.returncode != 0 and "SIGKILL" in proc.stderr, f"no SIGKILL at {kill_at}: {proc.stderr[-4000:]}"
    return time.perf_counter() - start


class CountingModel:
    """Wraps a model, counts the rows it generates for and can fail after a number of batches (a 'kill')."""

    def __init__(self, model, fail_after: int | None = None):
        self.model, self.fail_after, self.rows, self.calls = model, fail_after, 0, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, **kw):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        self.rows += kw["input_ids"].shape[0]
        return self.model.generate(**kw)
