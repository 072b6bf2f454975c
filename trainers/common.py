"""What the SFT and GRPO trainers share: the LR schedule length, the finished-run guard, exact checkpoint loading,
clear save failures, audio-encoder freezing. :class:`SuiteTrainerMixin` puts the first four under a trainer.

- :class:`ScheduleStepsMixin` decays the learning rate over ``schedule_steps`` instead of the run's length (the
  original GRPO code's 1000-step schedule on runs reported at step 500).
- :class:`FinishedRunGuardMixin` makes ``train(resume_from_checkpoint=...)`` from a checkpoint that already reached
  the run's ``max_steps`` load that checkpoint and stop. transformers 5.23 would otherwise take one more optimizer
  step and save one more checkpoint (its loop checks ``max_steps`` only after a step), so a resumed finished run
  would silently train past its length.
- ``trainers/checkpoint_load.py``: a resume loads every saved weight or fails naming the checkpoint;
  ``trainers/checkpoint_storage.py``: a save that fills the disk says so.
- :func:`freeze_audio_encoder` stops gradients into the audio encoder (``--set train.freeze_audio_encoder=true``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data.schema import DataError
from trainers.checkpoint_load import StrictCheckpointLoadMixin
from trainers.checkpoint_storage import SaveFailureMixin


class ScheduleStepsMixin:
    """Decay the learning rate over ``schedule_steps`` instead of the run's length."""

    schedule_steps: int | None = None

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None):
        return super().create_scheduler(self.schedule_steps or num_training_steps, optimizer)  # type: ignore[misc]


def checkpoint_finished_training(checkpoint: str | Path) -> bool:
    """True when the checkpoint's ``trainer_state.json`` says its run had reached ``max_steps``."""
    state_file = Path(checkpoint) / "trainer_state.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    max_steps = state.get("max_steps") or 0
    return max_steps > 0 and state.get("global_step", 0) >= max_steps


class FinishedRunGuardMixin:
    """Resuming from a checkpoint at the run's last step loads it and trains no further (see the module docstring)."""

    def train(self, resume_from_checkpoint: str | None = None, **kwargs: Any):  # type: ignore[override]
        if not resume_from_checkpoint or not checkpoint_finished_training(resume_from_checkpoint):
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)  # type: ignore[misc]
        from transformers.trainer_callback import TrainerState
        from transformers.trainer_utils import TrainOutput

        if getattr(self, "is_deepspeed_enabled", False):
            raise DataError(
                f"{resume_from_checkpoint}: training already reached its last step; a DeepSpeed checkpoint cannot be "
                "loaded without a training step. Evaluate it by path instead: python -m experiments eval --model "
                f"{resume_from_checkpoint} ..."
            )
        self.state = TrainerState.load_from_json(str(Path(resume_from_checkpoint) / "trainer_state.json"))
        self._load_from_checkpoint(resume_from_checkpoint)  # type: ignore[attr-defined]
        print(f"{resume_from_checkpoint}: training had finished (step {self.state.global_step} of "
              f"{self.state.max_steps}); loaded it, no further steps")  # fmt: skip
        return TrainOutput(self.state.global_step, 0.0, {})


class SuiteTrainerMixin(FinishedRunGuardMixin, StrictCheckpointLoadMixin, SaveFailureMixin, ScheduleStepsMixin):
    """Everything above, for ``class AudioSFTTrainer(SuiteTrainerMixin, Trainer)`` and the GRPO trainer alike."""


def freeze_audio_encoder(model: Any) -> None:
    from models.registry import family_of

    family_of(model).audio_encoder(model).requires_grad_(False)
