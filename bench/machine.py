"""Write a benchmark result with the machine it ran on (:func:`data.machine.machine_info`), and time GPU work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data.machine import machine_info


def machine_tag(machine: dict[str, Any]) -> str:
    """A short file-name tag: the GPU's name, or the CPU count."""
    return machine["gpu"].replace(" ", "-") if "gpu" in machine else f"cpu{machine['cpu_count']}"


def cuda_sync() -> None:
    """Wait for queued GPU work, so wall-clock timers measure it (no-op on CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def write_result(result: dict[str, Any], stem: str, out: str | None = None) -> Path:
    """Write a benchmark result (with the machine) to ``out`` or ``bench/results/<stem>-<machine tag>.json``."""
    from data.io import write_json_atomic

    machine = result.setdefault("machine", machine_info())
    path = Path(out) if out else Path("bench/results") / f"{stem}-{machine_tag(machine)}.json"
    write_json_atomic(path, result)
    print(f"written: {path}")
    return path
