"""Reading the silent-audio controls back, for the reports: each Table 2 row's selected checkpoint, evaluated with
every clip replaced by silence.

The evaluations themselves are written by :mod:`controls.silent` (``python -m controls.silent --profile toy``), beside
the selected evaluation of each run (:attr:`analysis.select.SelectedCheckpoint.silent_dir`). This module only reads
them: :func:`read_silent` gives Table 2's "silent audio" and "listening gain" columns and the silent levels of
Fig. 3(d) and 4(b), and checks that a silent evaluation was decoded like the real one it controls
(:func:`differences`); :func:`chance_level` gives a test set's chance accuracy. A score that stays the same without
the audio was earned from the text alone (a prior over the answers), not by listening.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.crosscheck import CrossCheck
from analysis.select import DEFAULT_RULE, SelectedCheckpoint, read_metrics
from data.io import read_json
from data.run_files import METRICS_FILE
from data.schema import DataError

# How a silent evaluation stands, for the reports (SilentEval.status).
OK = "ok"
MISSING = "missing"  # not evaluated (yet): the reports show n/a and name the command
NOT_HERE = "not here"  # the run directory is not on this machine (or not this run's): nothing to read
DIFFERS = "differs"  # evaluated, but not decoded like the real evaluation it controls

# The settings in which a silent evaluation must equal the real one it controls (paths into metrics.json).
COMPARED: tuple[tuple[str, ...], ...] = (
    ("prompt_id",), ("dtype", "compute"), ("decoding", "source"), ("decoding", "greedy"),
    ("decoding", "max_new_tokens"), ("benchmark", "version"), ("benchmark", "sha256"), ("benchmark", "n_items"),
)  # fmt: skip


def silent_command(profile: str, rule: str = DEFAULT_RULE) -> str:
    """The command that writes the silent evaluations of a profile's Table 2 (named wherever one is missing)."""
    return f"python -m controls.silent --profile {profile}" + (f" --select {rule}" if rule != DEFAULT_RULE else "")


@dataclass(frozen=True)
class SilentEval:
    """The silent-audio control of one selected checkpoint, as the reports use it.

    ``avg``: its test accuracy (%), None unless evaluated; ``status``: :data:`OK`, :data:`MISSING`,
    :data:`NOT_HERE` or :data:`DIFFERS` (then ``differences`` lists each setting, real against silent);
    ``detail``: why it is missing or not here.
    """

    avg: float | None
    status: str
    detail: str = ""
    differences: tuple[str, ...] = ()


def _at(metrics: Mapping[str, Any], keys: Sequence[str]) -> Any:
    value: Any = metrics
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def differences(real: Mapping[str, Any], silent: Mapping[str, Any]) -> list[str]:
    """How a silent evaluation's ``metrics.json`` differs from the real one it controls, beyond its silence.

    Prompt, compute dtype, decoding source, greedy or not, token limit and benchmark must be the same, or the
    difference between the two scores is not the audio's alone; a setting that one file does not record (an older
    version) counts as a difference, since sameness cannot be confirmed. Empty: a fair control.
    """
    out = [f"{'.'.join(keys)}: real {_at(real, keys)!r}, silent {_at(silent, keys)!r}"
           for keys in COMPARED if _at(real, keys) != _at(silent, keys)]  # fmt: skip
    if silent.get("audio_mode") != "silent":
        out.append(f"audio_mode: {silent.get('audio_mode')!r} where 'silent' was expected")
    return out


def read_silent(check: CrossCheck, checkpoint: SelectedCheckpoint, set_name: str = "test") -> SilentEval:
    """The silent-audio control of ``checkpoint`` on evaluation set ``set_name`` (``test``: MMAU test-mini), read
    only from a run directory that ``check`` found on this machine and owned by the run (any other file at that path
    is not this run's), and compared with the checkpoint's real evaluation of that set (:func:`differences`)."""
    run = check.run(checkpoint.run_id)
    if run is None or not run.checked:
        return SilentEval(None, NOT_HERE, run.reason if run is not None else "run not checked")
    where = checkpoint.silent_dir_of(set_name)
    path = where / METRICS_FILE if where is not None else None
    if path is None:
        return SilentEval(None, MISSING, "no saved evaluation")
    silent = read_metrics(path)
    if isinstance(silent, str):
        return SilentEval(None, MISSING, silent.replace(f"{run.run_dir}/", ""))
    accuracy = silent.get("accuracy")
    avg = accuracy.get("avg") if isinstance(accuracy, dict) else None
    if isinstance(avg, bool) or not isinstance(avg, (int, float)) or not math.isfinite(avg):
        return SilentEval(None, MISSING, f"{path} has no accuracy.avg")
    real_dir = checkpoint.set_dir(set_name)
    real = read_metrics(real_dir / METRICS_FILE) if real_dir is not None else "no saved evaluation"
    found = differences(real if isinstance(real, dict) else {}, silent)
    return SilentEval(float(avg), DIFFERS if found else OK, differences=tuple(found))


def silent_values(silent: Sequence[SilentEval]) -> list[float] | None:
    """Each seed's silent-audio accuracy (%), or None unless every seed has one (a partial mean would mislead)."""
    values = [s.avg for s in silent]
    return [float(v) for v in values if v is not None] if values and None not in values else None


def listening_gains(real: Sequence[float | None], silent: Sequence[SilentEval]) -> list[float] | None:
    """Listening gain per seed: accuracy with audio minus with silence; None unless every seed has both."""
    quiet = silent_values(silent)
    if quiet is None or not real or None in real:
        return None
    return [float(r) - q for r, q in zip(real, quiet, strict=True) if r is not None]


def chance_level(predictions: Path | None) -> float | None:
    """The test set's chance accuracy (%): the mean over its items of 1 / the number of choices, from the records of
    a saved ``predictions.json`` (which carry each item's choices); None if they cannot be read."""
    if predictions is None or not predictions.is_file():
        return None
    try:
        records = read_json(predictions)
    except DataError:
        return None
    sizes = [len(r["choices"]) for r in records if isinstance(r, dict) and isinstance(r.get("choices"), list)] \
        if isinstance(records, list) else []  # fmt: skip
    if not sizes or len(sizes) != len(records) or 0 in sizes:
        return None
    return 100.0 * math.fsum(1.0 / n for n in sizes) / len(sizes)
