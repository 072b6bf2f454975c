"""Test driver: run ``python -m experiments ...`` and SIGKILL it, with its whole process group, at a named moment.

    python tests/kill_at.py saved:2 run sft-full --profile smoke --output-dir DIR

``saved:N`` kills right after checkpoint-N is completely saved, before it is evaluated; ``evaluated:N`` right after
its evaluation is recorded. The main process kills its process group: start it in a session of its own
(``start_new_session=True``) and the kill takes its W&B service too. Under ``accelerate launch`` every rank runs in
a session of its own (torchrun starts them so): the main rank is SIGKILLed, the others wait at the same moment
until the launcher, seeing the main rank dead, ends them (and exits non-zero). The moment is exact because the
process kills itself from inside the trainer's save callback, instead of a watcher polling files from outside.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from experiments.__main__ import main
from trainers.checkpoint_eval import CheckpointEvaluator


def kill_at(moment: str) -> None:
    when, step = moment.split(":")
    if when not in ("saved", "evaluated"):
        raise SystemExit(f"unknown moment {moment!r}: saved:N or evaluated:N")
    original = CheckpointEvaluator.on_save
    main_process = int(os.environ.get("RANK", "0")) == 0

    def at_moment() -> None:
        if main_process:  # itself and its children (the W&B service): its process group
            os.killpg(os.getpgid(0), signal.SIGKILL)
        # Another rank waits here: the launcher ends it once the main process is dead. (Killing it too would race
        # the main process, which may still be writing trainer_state.json, the checkpoint's last file.)
        time.sleep(3600)

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if when == "saved" and state.global_step == int(step):
            at_moment()
        original(self, args, state, control, **kwargs)
        if when == "evaluated" and state.global_step == int(step):
            at_moment()

    CheckpointEvaluator.on_save = on_save  # type: ignore[method-assign]


if __name__ == "__main__":
    kill_at(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
