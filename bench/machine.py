"""Describe the machine a benchmark ran on (every result JSON names it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            info["cpu_model"] = names[0]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


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
