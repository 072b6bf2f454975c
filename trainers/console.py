"""What a run prints: a short line per training log step, lines that never land on a progress bar, each warning once.

- :func:`install_compact_log` swaps a trainer's ``ProgressCallback`` (the training bar, which also prints the whole
  log dict at every logging step: 26 keys for GRPO) for :class:`CompactProgressCallback`: the same bar, and one
  short line per logging step with the few numbers of :data:`COMPACT_KEYS` that the row has. With
  ``disable_tqdm`` the ``PrinterCallback`` is swapped for :class:`CompactPrinterCallback` (the same line, no bar).
  The full rows still go to ``train_log.jsonl`` and W&B (``trainers/log_recorder.py``).
- :func:`say` prints a line above the live progress bars (``tqdm``'s external write mode, which clears the bars
  and redraws them below it): a plain ``print`` is appended to the end of a bar's line.
- :func:`show_each_warning_once`, called once at the start of a run, makes the warnings that libraries repeat on
  every generation or save print once per process, each on its own line above the progress bars:

  - Python warnings, which libraries raise at each generation and Python shows again after each save (the
    Trainer's ``warnings.catch_warnings`` around its saves resets Python's once-per-location registry). One is
    dropped entirely, as pure noise: transformers' "`is_gradient_checkpointing` is deprecated" FutureWarning, which
    TRL (at each generation) and PEFT (at each adapter load) raise from their own code: nothing a user can change;
  - messages of the ``logging`` handlers the libraries print through (transformers' own, and the last-resort
    handler where TRL, peft and accelerate end up when nothing else is configured);
  - W&B's terminal warnings. One is dropped entirely, as pure noise: "URL not available in offline run", which TRL
    triggers at every save by asking the run's URL for the checkpoint's model card. An offline run has none, and
    the suite's own W&B line at the start of the run already says the run is offline and how to sync it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from tqdm.auto import tqdm
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from models.family import say  # the one console printer (the model families print through it too)
from trainers.log_recorder import RUN_TOTALS

# (log key, label, format): the numbers one watches during training, in this order; a row shows the ones it has.
# "reward" is GRPO's mean total reward; its group standard deviation ("reward_std") follows it.
COMPACT_KEYS: tuple[tuple[str, str, str], ...] = (
    ("loss", "loss", ".4g"),
    ("reward", "reward", ".3f"),
    ("kl", "kl", ".3g"),
    ("completions/mean_length", "len", ".1f"),
    ("learning_rate", "lr", ".2e"),
    ("grad_norm", "grad", ".3g"),
)

# W&B warnings that carry nothing a researcher can act on (see the module docstring): never printed.
WANDB_NOISE = ("URL not available in offline run",)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compact_line(logs: Mapping[str, Any], step: int, max_steps: int) -> str | None:
    """One short line for a trainer log row, e.g. ``step  3/40  loss 0.012  reward 0.625+/-0.210  lr 1.50e-05``.

    The end-of-training row (runtime and mean loss) gets its own line; a row with none of :data:`COMPACT_KEYS`
    gives None (nothing to show: the row is still in ``train_log.jsonl``).
    """
    if any(k in logs for k in RUN_TOTALS):
        done = f"training done: step {step}/{max_steps}"
        if _number(logs.get("train_runtime")):
            done += f" in {logs['train_runtime']:.1f} s"
        if _number(logs.get("train_loss")):
            done += f", mean loss {logs['train_loss']:.4g}"
        return done
    parts = []
    for key, label, spec in COMPACT_KEYS:
        value = logs.get(key)
        if not _number(value):
            continue
        text = f"{label} {value:{spec}}"
        if key == "reward" and _number(logs.get("reward_std")):
            text += f"+/-{logs['reward_std']:{spec}}"  # ASCII: a console without UTF-8 must print it too
        parts.append(text)
    if not parts:
        return None
    return f"step {step:>{len(str(max_steps))}}/{max_steps}  " + "  ".join(parts)


class CompactProgressCallback(ProgressCallback):
    """transformers' training bar, with one :func:`compact_line` per logging step instead of the whole log dict."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero or self.training_bar is None:
            return
        line = compact_line(logs, state.global_step, state.max_steps)
        if line is not None:
            say(line)


class CompactPrinterCallback(PrinterCallback):
    """``PrinterCallback`` (used with ``disable_tqdm``) printing :func:`compact_line` instead of the log dict."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_local_process_zero:
            return
        line = compact_line(logs, state.global_step, state.max_steps)
        if line is not None:
            print(line, flush=True)


def install_compact_log(trainer: Any) -> None:
    """Replace ``trainer``'s ``ProgressCallback`` / ``PrinterCallback`` by their compact versions (idempotent).

    Call it after building the trainer and before ``train()``. The compact classes subclass the originals, so a
    second call swaps the compact callback for a fresh one instead of adding a second bar.
    """
    for original, compact in ((ProgressCallback, CompactProgressCallback), (PrinterCallback, CompactPrinterCallback)):
        if trainer.pop_callback(original) is not None:
            trainer.add_callback(compact)


class _OncePerProcess(logging.Filter):
    """A handler filter that lets each (logger, level, message) through once."""

    def __init__(self) -> None:
        super().__init__("once-per-process")
        self.seen: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


_LOG_ONCE = _OncePerProcess()
_WARNINGS_SHOWN: set[tuple[type[Warning], str]] = set()


# Python warnings never shown: (category, text in the message). Raised inside the libraries, not by the suite's calls.
DROPPED: tuple[tuple[type[Warning], str], ...] = ((FutureWarning, "`is_gradient_checkpointing` is deprecated"),)


def _python_warnings_once() -> None:
    # Wrapping showwarning rather than adding a "once" filter: the filters still decide what is shown at all (an
    # ignored DeprecationWarning stays ignored), and a warnings.catch_warnings elsewhere, which resets Python's own
    # once-per-location registry, cannot bring a message back.
    shown = warnings.showwarning
    if getattr(shown, "_once_per_process", False):
        return

    def showwarning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        key = (category, str(message))
        if key in _WARNINGS_SHOWN or any(issubclass(category, c) and text in str(message) for c, text in DROPPED):
            return
        _WARNINGS_SHOWN.add(key)
        with tqdm.external_write_mode(file=sys.stderr):  # on its own line, not onto a live progress bar
            shown(message, category, *args, **kwargs)

    showwarning._once_per_process = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def _logging_once() -> None:
    from transformers.utils import logging as hf_logging

    # The handlers this suite's libraries print through; handlers a caller installed on the root logger (pytest's
    # log capture, an application's own set-up) are left alone.
    handlers = list(hf_logging.get_logger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        handler.addFilter(_LOG_ONCE)  # addFilter ignores a filter it already has


def _wandb_warnings_once() -> None:
    try:
        import wandb
    except ImportError:  # tracking off without wandb installed: nothing to tame
        return
    termwarn = wandb.termwarn
    if getattr(termwarn, "_once_per_process", False):
        return

    def once(string: str, *args: Any, **kwargs: Any) -> None:
        if string in WANDB_NOISE:
            return
        if len(args) < 2:  # unless the caller passed repeat itself (termwarn(string, newline, repeat, prefix))
            kwargs.setdefault("repeat", False)  # wandb's own switch: skip a message it has already printed
        with tqdm.external_write_mode(file=sys.stderr):
            termwarn(string, *args, **kwargs)

    once._once_per_process = True  # type: ignore[attr-defined]
    # W&B calls its warnings as wandb.termwarn(...), looked up on the module at each call.
    wandb.termwarn = once


def show_each_warning_once() -> None:
    """Make repeated warnings print once per process (Python warnings, logging handlers, W&B); idempotent.

    Call it at the start of a run, before the trainer is built. See the module docstring for what it covers and
    the one W&B message it drops entirely.
    """
    _python_warnings_once()
    _logging_once()
    _wandb_warnings_once()
