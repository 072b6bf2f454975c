"""The few process-group operations sharded evaluation needs; each is a no-op in a single process.

Under ``accelerate launch --num_processes N`` (or torchrun) every process evaluates a shard of the items and the
results are gathered, so each item is generated exactly once and all processes end with the same metrics; only the
main process writes files. Nothing here imports accelerate: a plain ``torch.distributed`` process group is all it
uses, and without one (a normal run) rank 0 of 1 is assumed.
"""

from __future__ import annotations

from typing import Any


def _dist() -> Any:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank_and_size() -> tuple[int, int]:
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)


def is_main() -> bool:
    return rank_and_size()[0] == 0


def barrier() -> None:
    dist = _dist()
    if dist:
        dist.barrier()


def gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process."""
    dist = _dist()
    if not dist:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def init_from_environment() -> None:
    """Join the process group that ``accelerate launch`` / torchrun describe in the environment (if any)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and _dist() is None:
        from accelerate import PartialState

        PartialState()  # initialises torch.distributed with the launcher's settings (gloo on CPU, nccl on GPU)
