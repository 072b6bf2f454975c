"""The W&B run of one experiment run: named, grouped, tagged, offline when no API key, always finished.

- project ``r1-aqa``, group = experiment name, name ``<experiment>-<profile>-s<seed>`` (another model than the
  profile's own: ``<experiment>-<profile>-<model>-s<seed>``), tags = method, profile, prompt, ``model:<model>``
  (+ ``lora``, + ``adhoc`` when the run is not the registered experiment as it stands); W&B's own variables
  win when set: ``WANDB_PROJECT``, ``WANDB_NAME``, ``WANDB_RUN_GROUP``, and ``WANDB_TAGS`` (comma-separated, added
  after the suite's tags, which analysis reads by position). A resumed run keeps the name, group and tags it
  stored unless the variable is set, and always its stored project (one run's history in one project);
- what was used (mode, project, name, group, tags, the variables that set them, run id, local run folders) is in
  the W&B config under ``wandb`` and in ``<output dir>/wandb_run.json``;
- at the start of a run one line says where its W&B files go and, offline, the exact ``wandb sync`` command; a
  line at the end repeats the command with every local folder of the run (a resumed run has one per session);
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
import shlex
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.io import read_json, write_json_atomic
from data.run_files import RUN_ID_FILE, STEP_KEY, WANDB_RUN_FILE
from data.schema import DataError
from experiments.profiles import output_root

DEFAULT_PROJECT = "r1-aqa"
# The W&B variables the suite honours, by the setting each one sets.
WANDB_VARIABLES = {"project": "WANDB_PROJECT", "name": "WANDB_NAME", "group": "WANDB_RUN_GROUP", "tags": "WANDB_TAGS"}


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

    def table(self, key: str, rows: list[dict[str, Any]], step: int) -> None:
        """Log ``rows`` as one W&B table at ``train/global_step`` = ``step`` (the rows are on disk already)."""
        if self.run is not None and rows:
            import wandb

            from trainers.completion_samples import table_columns

            columns, data = table_columns(rows)
            self.run.log({key: wandb.Table(columns=columns, data=data), STEP_KEY: step})

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v


def run_name(resolved: Any) -> str:
    """``<experiment>-<profile>-s<seed>``; a run on another model than the profile's own (``--model``):
    ``<experiment>-<profile>-<model>-s<seed>``."""
    label = resolved.profile.model_label
    return f"{resolved.experiment.name}-{resolved.profile.name}{f'-{label}' if label else ''}-s{resolved.seed}"


def model_tag(model: str) -> str:
    """``model:<model>`` as a W&B tag (at most 64 characters: a longer name is cut and keeps a hash of the whole)."""
    import hashlib

    from experiments.profiles import model_slug

    tag = f"model:{model_slug(model)}"
    return tag if len(tag) <= 64 else f"{tag[:55]}-{hashlib.sha256(tag.encode()).hexdigest()[:8]}"


def run_tags(resolved: Any) -> list[str]:
    exp = resolved.experiment
    tags = [exp.method, resolved.profile.name, exp.prompt, model_tag(resolved.profile.model)]
    if exp.lora is not None:
        tags.append("lora")
    if resolved.adhoc:
        tags.append("adhoc")
    return tags


@dataclass(frozen=True)
class WandbSettings:
    """How a run's W&B run is filed: recorded in its config (``wandb``) and in ``wandb_run.json``."""

    mode: str
    project: str
    name: str
    group: str
    tags: tuple[str, ...]
    from_env: tuple[str, ...]  # the W&B variables that decided any of the above

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "project": self.project, "name": self.name, "group": self.group,
                "tags": list(self.tags), "from_env": list(self.from_env)}  # fmt: skip


def _variable(setting: str) -> str | None:
    value = os.environ.get(WANDB_VARIABLES[setting], "").strip()
    return value or None  # set but empty counts as unset, as in W&B itself


def wandb_env_tags() -> list[str]:
    """The tags of ``WANDB_TAGS`` (comma-separated, blanks around each stripped), checked as W&B checks them.

    W&B itself reads the variable when it starts and fails on an empty tag (``a,,b``, a trailing comma) or one over
    64 characters, with a message that does not name the variable: check it first (cheap; call it before loading
    a model).
    """
    raw = os.environ.get(WANDB_VARIABLES["tags"], "")
    if not raw.strip():
        return []
    tags = [t.strip() for t in raw.split(",")]
    bad = [f"#{i} {t!r}" for i, t in enumerate(tags, 1) if not 1 <= len(t) <= 64]
    if bad:
        raise DataError(f"WANDB_TAGS={raw!r}: W&B accepts only tags of 1 to 64 characters (not {', '.join(bad)}); "
                        "set it to comma-separated tags, e.g. WANDB_TAGS=ablation,lr-sweep, or unset it")  # fmt: skip
    return tags


def wandb_settings(resolved: Any, mode: str, stored: Mapping[str, Any] | None = None) -> WandbSettings:
    """The project, name, group and tags of ``resolved``'s W&B run.

    A W&B variable that is set wins; otherwise a resumed run keeps what it ``stored`` (its ``wandb_run.json``), and
    a new run gets the suite's defaults. The project is the exception: a resumed run stays in its stored project
    whatever ``WANDB_PROJECT`` says (a note is printed), so that one run's history is never split across projects.
    ``from_env`` names the variables that decided a setting in this session.
    """
    stored = stored or {}
    env = {setting: _variable(setting) for setting in WANDB_VARIABLES}
    if stored.get("project") and env["project"] not in (None, stored["project"]):
        print(f"W&B: WANDB_PROJECT={env['project']} ignored: the resumed run belongs to project "
              f"{stored['project']} (start a new run with --output-dir to file it elsewhere)", flush=True)  # fmt: skip
        env["project"] = None
    extra_tags = wandb_env_tags()
    return WandbSettings(
        mode=mode,
        project=stored.get("project") or env["project"] or DEFAULT_PROJECT,
        name=env["name"] or stored.get("name") or run_name(resolved),
        group=env["group"] or stored.get("group") or resolved.experiment.name,
        # Extra tags go after the suite's own: analysis reads the profile as the second tag.
        tags=tuple(dict.fromkeys([*run_tags(resolved), *extra_tags])) if extra_tags
        else tuple(stored.get("tags") or run_tags(resolved)),
        from_env=tuple(WANDB_VARIABLES[setting] for setting, value in env.items() if value),
    )  # fmt: skip


def sync_command(folders: list[str]) -> str:
    """The command that uploads an offline run: every local folder of it (one per session of a resumed run)."""
    return "wandb sync " + " ".join(shlex.quote(f) for f in folders)


def _record_session(path: Path, record: dict[str, Any], run: Any) -> dict[str, Any]:
    """Add this session's local run folder to the run's ``wandb_run.json`` record and write it; returns it."""
    folder = str(Path(run.dir).parent)  # wandb's files/ lies inside the run folder
    folders = [f for f in record.get("run_folders", []) if f != folder and Path(f).is_dir()] + [folder]
    record = {**record, "id": run.id, "run_folder": folder, "run_folders": folders}
    write_json_atomic(path, record)
    return record


def _init_run(run_id: str, config: dict[str, Any], settings: WandbSettings, patience_s: float = 120.0) -> Any:
    """``wandb.init`` of this run. After a hard kill the dead run's W&B service process may still hold the run id
    for a while ("run ID ... is in use"); a resume waits for it to let go (up to ``patience_s``)."""
    import time

    deadline = time.monotonic() + patience_s
    while True:
        try:
            return _init_run_once(run_id, config, settings)
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


def _init_run_once(run_id: str, config: dict[str, Any], settings: WandbSettings) -> Any:
    import wandb

    run = wandb.init(
        project=settings.project,
        group=settings.group,
        name=settings.name,
        tags=list(settings.tags),
        config=config,
        dir=str(wandb_dir()),
        mode=settings.mode,
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


def _await_session_end(run_folder: str, run_id: str) -> None:
    """Let the W&B service finish writing this session's file before anything reads it back."""
    from experiments.wandb_files import wait_for_exit_record

    path = Path(run_folder) / f"run-{run_id}.wandb"
    if not wait_for_exit_record(path):
        print(f"W&B: {path} has no exit record yet; reading it back may miss this session's last records",
              flush=True)  # fmt: skip


def _verify_complete(
    resolved: Any, run_id: str, config: dict[str, Any], settings: WandbSettings, record: dict[str, Any]
) -> dict[str, Any]:
    """After ``finish()``: W&B must hold every row of the record; repair once, then refuse. Returns the run's
    ``wandb_run.json`` record (with the repair session's folder, when there was one)."""
    from experiments.record import steps_of

    run_dir = resolved.output_dir
    if not _wandb_gaps(run_id, run_dir):
        return record
    run = _init_run(run_id, config, settings)
    record = _record_session(run_dir / WANDB_RUN_FILE, record, run)
    try:
        relog_missing(run, run_dir, "after finishing")
    finally:
        run.finish(exit_code=0)
        _await_session_end(record["run_folder"], run_id)
    still = _wandb_gaps(run_id, run_dir)
    if still:
        raise WandbIncomplete(
            f"W&B run {run_id} ({wandb_dir()}) lacks {len(still)} row(s) of {run_dir} (steps {steps_of(still)}) "
            "after re-logging them; the run is not marked complete. Rerun with --resume to try again."
        )
    return record


@contextmanager
def tracked_run(resolved: Any, *, resume: bool = False, extra_config: dict | None = None) -> Iterator[Tracker]:
    """Open the run's W&B run (or a disabled tracker) and always finish it; W&B ends up holding the whole record."""
    from data.distributed import is_main

    mode = wandb_mode()
    if mode == "disabled" or not is_main():  # one W&B run per experiment run: the main process's
        yield Tracker(None)
        return
    id_file = resolved.output_dir / RUN_ID_FILE
    record_file = resolved.output_dir / WANDB_RUN_FILE
    run_id = id_file.read_text().strip() if resume and id_file.exists() else secrets.token_hex(4)
    # What the run used before (resumed with the same id), else nothing: a new run starts from the defaults.
    stored = read_json(record_file) if resume and record_file.exists() else {}
    stored = stored if stored.get("id") == run_id else {}
    settings = wandb_settings(resolved, mode, stored)
    resolved.output_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id + "\n")
    wandb_dir().mkdir(parents=True, exist_ok=True)
    config = {**resolved.to_dict(), **(extra_config or {}), "wandb": settings.as_dict()}
    run = _init_run(run_id, config, settings)
    record = _record_session(record_file, {**stored, **settings.as_dict()}, run)
    url = None if run.offline else run.url
    if url is None:
        print(f"W&B: offline run {run_id} ({settings.name}) writes to {record['run_folder']}; upload it with "
              f"`{sync_command([record['run_folder']])}`", flush=True)  # fmt: skip
    else:
        print(f"W&B: run {run_id} ({settings.name}) at {url}; local files in {record['run_folder']}", flush=True)
    if resume:
        relog_missing(run, resolved.output_dir, "on resume")
    exit_code = 1
    try:
        yield Tracker(run)
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
        _await_session_end(record["run_folder"], run_id)
    record = _verify_complete(resolved, run_id, config, settings, record)
    if url is None:
        print(f"W&B: offline run {run_id} finished; upload it with `{sync_command(record['run_folders'])}`",
              flush=True)  # fmt: skip
    else:
        print(f"W&B: run {run_id} finished: {url}", flush=True)
