"""How a run computes, apart from what it computes: its dtype, its determinism, its seeding, its evaluator settings.

The one rule for each, used by the runner (``experiments/runner.py``), the trainers' set-up
(``experiments/training.py``) and every later evaluation of a run (``controls/silent.py``), so that a checkpoint is
always evaluated as its run evaluated it. Imports nothing of the suite's at module level but its specs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from experiments.spec import EvalSpec, Experiment, TrainSpec

if TYPE_CHECKING:
    from models.evaluate import DecodingConfig


def run_dtype(train: TrainSpec | None) -> Literal["float32", "bfloat16"]:
    """The one compute dtype of a run: its training (``train.bf16``; None: bf16 on CUDA) and every evaluation of it,
    step 0 included; a run without training (``direct``, ``python -m experiments eval``): bf16 on CUDA."""
    import torch

    bf16 = train.bf16 if train is not None and train.bf16 is not None else torch.cuda.is_available()
    return "bfloat16" if bf16 else "float32"


def run_deterministic(train: TrainSpec | None) -> bool:
    """Whether a training run uses deterministic algorithms (``train.deterministic``; None: on CPU only)."""
    import torch

    if train is not None and train.deterministic is not None:
        return train.deterministic
    return not torch.cuda.is_available()


def compute_settings(train: TrainSpec | None) -> dict[str, Any]:
    """What decides a training run's bits besides its configuration: written to the run directory
    (``compute_settings.json``) and the W&B config. The same settings on the same machine give the same weights."""
    import platform

    import torch

    return {
        "deterministic_algorithms": run_deterministic(train),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.machine()})",
    }


@contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(enabled)`` for the block, the previous setting restored afterwards.

    Ops that have a deterministic implementation take it (on 2 CPU threads, some GRPO kernel's reduction order
    varied between runs without it; ``tests/test_training_runs.py``); an op without one raises instead of silently
    varying.
    """
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    if enabled and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS refuses deterministic mode without it
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def load_dtype(exp: Experiment) -> Any:
    """The torch dtype a training run loads its base model in: trained weights stay fp32 (bf16 autocast; pure bf16
    weights lose small updates to rounding); with LoRA the base is frozen, so a bf16 run loads it in bf16 (peft keeps
    the adapters themselves in fp32). None for a run without training (``direct``: the loader's default)."""
    import torch

    if exp.train is None:
        return None
    return torch.bfloat16 if exp.lora is not None and run_dtype(exp.train) == "bfloat16" else torch.float32


def decoding_config(spec: EvalSpec, compute_dtype: str | None, *, valid_frame_encoder: bool = True) -> DecodingConfig:
    """The evaluator's :class:`~models.evaluate.DecodingConfig` from an experiment's evaluation settings (every
    evaluation of the suite builds it here)."""
    from models.evaluate import DecodingConfig

    return DecodingConfig(batch_size=spec.batch_size, max_new_tokens=spec.max_new_tokens, static_cache=spec.static_cache,
                          valid_frame_encoder=valid_frame_encoder, source=spec.decoding,
                          compute_dtype=compute_dtype)  # fmt: skip


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
