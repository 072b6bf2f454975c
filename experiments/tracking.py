"""The W&B run of one experiment run: named, grouped, tagged, offline when no API key, always finished.

- project ``$WANDB_PROJECT`` (default ``r1-aqa``), group = experiment name, name ``<experiment>-<profile>-s<seed>``,
  tags = method, profile, prompt (+ ``adhoc`` when ``--set`` changed the registered experiment);
- offline unless an API key is configured (``WANDB_API_KEY`` or a ``wandb login``); ``WANDB_MODE`` wins when set,
  and ``WANDB_MODE=disabled`` turns tracking off (the run then logs nothing, for GPU checks without wandb);
- run files under ``$WANDB_DIR`` when set, else ``outputs/wandb``;
- the config is the resolved experiment (the object that built the trainer);
- the run id is kept in ``<output dir>/wandb_run_id``: ``--resume`` continues the same W&B run;
- ``finish()`` runs in ``finally``, with a non-zero exit code when the run failed.

The Hugging Face ``WandbCallback`` reuses this run (it only calls ``wandb.init`` when no run is active) and logs
``train/...`` metrics with ``train/global_step``; extra metrics are logged with that key too, never with ``step=``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.profiles import output_root


def wandb_mode() -> str:
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    if netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def wandb_dir() -> Path:
    return Path(os.environ.get("WANDB_DIR") or output_root() / "wandb")


@dataclass
class Tracker:
    run: Any = None  # the wandb run, or None when tracking is disabled

    @property
    def report_to(self) -> list[str]:
        return ["wandb"] if self.run is not None else []

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def log(self, row: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in row.items() if v is not None})

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v


def run_name(resolved: Any) -> str:
    return f"{resolved.experiment.name}-{resolved.profile.name}-s{resolved.seed}"


def run_tags(resolved: Any) -> list[str]:
    exp = resolved.experiment
    tags = [exp.method, resolved.profile.name, exp.prompt]
    if exp.lora is not None:
        tags.append("lora")
    if resolved.adhoc:
        tags.append("adhoc")
    return tags


@contextmanager
def tracked_run(resolved: Any, *, resume: bool = False, extra_config: dict | None = None) -> Iterator[Tracker]:
    """Open the run's W&B run (or a disabled tracker) and always finish it."""
    from data.distributed import is_main

    mode = wandb_mode()
    if mode == "disabled" or not is_main():  # one W&B run per experiment run: the main process's
        yield Tracker(None)
        return
    import wandb

    id_file = resolved.output_dir / "wandb_run_id"
    run_id = id_file.read_text().strip() if resume and id_file.exists() else secrets.token_hex(4)
    resolved.output_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id + "\n")
    directory = wandb_dir()
    directory.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "r1-aqa"),
        group=resolved.experiment.name,
        name=run_name(resolved),
        tags=run_tags(resolved),
        config={**resolved.to_dict(), **(extra_config or {})},
        dir=str(directory),
        mode=mode,
        id=run_id,
        resume="allow",
        settings=wandb.Settings(silent=True, x_disable_stats=True, console="off", save_code=False),
    )
    # The trainers' step counter is the x-axis of every chart, including evaluations logged from callbacks.
    run.define_metric("train/global_step")
    run.define_metric("*", step_metric="train/global_step", step_sync=True)
    exit_code = 1
    try:
        yield Tracker(run)
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
