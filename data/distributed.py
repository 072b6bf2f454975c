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

    import torch

    if not torch.cuda.is_available():
        # DeepSpeed's CPU accelerator (gloo without oneCCL); named, so that importing DeepSpeed (TRL does) does not
        # warn that it fell back to the CPU.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and _dist() is None:
        from accelerate import PartialState

        if not torch.cuda.is_available():
            allow_cpu_sharding()
        PartialState()  # initialises torch.distributed with the launcher's settings (gloo on CPU, nccl on GPU)


def allow_cpu_sharding() -> None:
    """Make accelerate treat torchrun-launched CPU processes as distributed (gloo), with FSDP when configured.

    accelerate 1.15 gives such a process DistributedType.NO (the Trainer then trains a full replica on all the data
    in every process) and applies FSDP only on top of the GPU-like types. Idempotent.
    """
    import os

    import accelerate.state as state
    from accelerate.utils import DistributedType

    if getattr(state, "_r1aqa_cpu_sharding", False):
        return
    prepare = state.PartialState._prepare_backend

    def _prepare_backend(self, cpu=False, sagemaker_dp=False, backend=None):
        backend, kind = prepare(self, cpu, sagemaker_dp, backend)
        if kind == DistributedType.NO and int(os.environ.get("LOCAL_RANK", -1)) != -1:
            backend, kind = "gloo", DistributedType.MULTI_CPU
        return backend, kind

    init = state.AcceleratorState.__init__

    def __init__(self, *args, fsdp_plugin=None, **kwargs):
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if self.distributed_type == DistributedType.MULTI_CPU and os.environ.get("ACCELERATE_USE_FSDP") == "true":
            self.distributed_type = DistributedType.FSDP
            if fsdp_plugin is not None:
                self.fsdp_plugin = fsdp_plugin

    state.PartialState._prepare_backend = _prepare_backend
    state.AcceleratorState.__init__ = __init__
    state._r1aqa_cpu_sharding = True
