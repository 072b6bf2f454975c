"""Test driver: run ``python -m experiments ...`` and SIGKILL it, with its whole process group, at a named moment.

    python tests/kill_at.py saved:2 run sft-full --profile smoke --output-dir DIR

``saved:N`` kills right after checkpoint-N is completely saved, before it is evaluated; ``evaluated:N`` right after
its evaluation is recorded. Start it in a session of its own (``start_new_session=True``): the kill then takes the
W&B service too, as a scheduler's kill of a job does. The moment is exact because the process kills itself from
inside the trainer's save callback, instead of a watcher polling files from outside.
"""

from __future__ import annotations

import os
import signal
import sys

from experiments.__main__ import main
from trainers.checkpoint_eval import CheckpointEvaluator


def kill_at(moment: str) -> None:
    when, step = moment.split(":")
    if when not in ("saved", "evaluated"):
        raise SystemExit(f"unknown moment {moment!r}: saved:N or evaluated:N")
    original = CheckpointEvaluator.on_save

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if when == "saved" and state.global_step == int(step):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        original(self, args, state, control, **kwargs)
        if when == "evaluated" and state.global_step == int(step):
            os.killpg(os.getpgid(0), signal.SIGKILL)

    CheckpointEvaluator.on_save = on_save  # type: ignore[method-assign]


if __name__ == "__main__":
    kill_at(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
