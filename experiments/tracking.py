"""The W&B run of one experiment run: named, grouped, tagged, offline when no API key, always finished.

- project ``$WANDB_PROJECT`` (default ``r1-aqa``), group = experiment name, name ``<experiment>-<profile>-s<seed>``,
  tags = method, profile, prompt (+ ``adhoc`` when ``--set`` changed the registered experiment);
- offline unless an API key is configured (``WANDB_API_KEY`` or a ``wandb login``); ``WANDB_MODE`` wins when set,
  and ``WANDB_MODE=disabled`` turns tracking off (the run then logs nothing, for GPU checks without wandb);
- run files under ``$WANDB_DIR`` when set, else ``outputs/wandb``;
- the config is the resolved experiment (the object that built the trainer);
- the run id is kept in ``<output dir>/wandb_run_id``: ``--resume`` continues the same W&B run;
- ``finish()`` runs in ``finally``, with a non-zero exit code when the run failed;
- the run directory is the durable record (``experiments/record.py``): every row is on disk before it is logged.
  When a run resumes, and again after it finishes, the rows of the record that W&B lacks (lost to a hard kill
  while W&B still buffered them) are logged again at their own steps; a run whose W&B history still lacks any
  row after that raises :class:`WandbIncomplete`, so it is never marked complete.

The trainers report to nobody themselves: ``trainers/log_recorder.py`` writes each log row to the run directory
and then logs it here, named as Hugging Face's ``WandbCallback`` names it (``train/...`` with ``train/global_step``);
every row carries that key (the chart x-axis), never ``step=``.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.schema import DataError
from experiments.profiles import output_root
from trainers.record_files import RUN_ID_FILE, STEP_KEY


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


class WandbIncomplete(DataError):
    """The W&B run still lacks rows that the run directory holds."""


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


def _init_run(resolved: Any, run_id: str, config: dict[str, Any], mode: str, patience_s: float = 120.0) -> Any:
    """``wandb.init`` of this run. After a hard kill the dead run's W&B service process may still hold the run id
    for a while ("run ID ... is in use"); a resume waits for it to let go (up to ``patience_s``)."""
    import time

    deadline = time.monotonic() + patience_s
    while True:
        try:
            return _init_run_once(resolved, run_id, config, mode)
        except Exception as exc:  # wandb raises its ServerResponseError here
            if "in use" not in str(exc):
                raise
            if time.monotonic() > deadline:
                shared = os.environ.get("WANDB_SERVICE")
                raise DataError(
                    f"W&B run {run_id} is still in use after {patience_s:.0f} s"
                    + (" by the W&B service this process inherited (WANDB_SERVICE is set: a killed run's stream "
                       "lives on in that service); unset WANDB_SERVICE or restart the process that owns it"
                       if shared else "; check that no other process is writing this run")
                ) from exc  # fmt: skip
            print(f"W&B run {run_id} is still held by the service of a killed process; waiting for it to exit "
                  f"({exc})", file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(2.0)


def _init_run_once(resolved: Any, run_id: str, config: dict[str, Any], mode: str) -> Any:
    import wandb

    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "r1-aqa"),
        group=resolved.experiment.name,
        name=run_name(resolved),
        tags=run_tags(resolved),
        config=config,
        dir=str(wandb_dir()),
        mode=mode,
        id=run_id,
        resume="allow",
        settings=wandb.Settings(silent=True, x_disable_stats=True, console="off", save_code=False),
    )
    # The trainers' step counter is the x-axis of every chart, including evaluations logged from callbacks.
    run.define_metric(STEP_KEY)
    run.define_metric("*", step_metric=STEP_KEY, step_sync=True)
    return run


def _wandb_gaps(run_id: str, run_dir: Path) -> list[dict[str, Any]]:
    """The rows of the run directory's record that the run's W&B files lack."""
    from experiments.record import missing_in_wandb, record_rows, wandb_logged_rows

    return missing_in_wandb(record_rows(run_dir), wandb_logged_rows(run_id, wandb_dir()))


def relog_missing(run: Any, run_dir: Path, when: str) -> int:
    """Log again, each at its own step, the record's rows that the run's W&B files lack; returns how many."""
    from experiments.record import steps_of

    missing = _wandb_gaps(run.id, run_dir)
    for row in missing:
        run.log({k: v for k, v in row.items() if v is not None})
    if missing:
        print(f"W&B run {run.id}: {when}, re-logged {len(missing)} row(s) of {run_dir} that W&B had lost "
              f"(steps {steps_of(missing)})")  # fmt: skip
    return len(missing)


def _verify_complete(resolved: Any, run_id: str, config: dict[str, Any], mode: str) -> None:
    """After ``finish()``: W&B must hold every row of the record; repair once, then refuse."""
    from experiments.record import steps_of

    run_dir = resolved.output_dir
    if not _wandb_gaps(run_id, run_dir):
        return
    run = _init_run(resolved, run_id, config, mode)
    try:
        relog_missing(run, run_dir, "after finishing")
    finally:
        run.finish(exit_code=0)
    still = _wandb_gaps(run_id, run_dir)
    if still:
        raise WandbIncomplete(
            f"W&B run {run_id} ({wandb_dir()}) lacks {len(still)} row(s) of {run_dir} (steps {steps_of(still)}) "
            "after re-logging them; the run is not marked complete. Rerun with --resume to try again."
        )


@contextmanager
def tracked_run(resolved: Any, *, resume: bool = False, extra_config: dict | None = None) -> Iterator[Tracker]:
    """Open the run's W&B run (or a disabled tracker) and always finish it; W&B ends up holding the whole record."""
    from data.distributed import is_main

    mode = wandb_mode()
    if mode == "disabled" or not is_main():  # one W&B run per experiment run: the main process's
        yield Tracker(None)
        return
    id_file = resolved.output_dir / RUN_ID_FILE
    run_id = id_file.read_text().strip() if resume and id_file.exists() else secrets.token_hex(4)
    resolved.output_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id + "\n")
    wandb_dir().mkdir(parents=True, exist_ok=True)
    config = {**resolved.to_dict(), **(extra_config or {})}
    run = _init_run(resolved, run_id, config, mode)
    if mode == "offline":
        print(f"W&B: offline run {run_id} under {wandb_dir()}; upload it with `wandb sync {Path(run.dir).parent}`")
    if resume:
        relog_missing(run, resolved.output_dir, "on resume")
    exit_code = 1
    try:
        yield Tracker(run)
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
    _verify_complete(resolved, run_id, config, mode)
