"""Random-weight models for benchmarks, of any family behind the seam: its tiny twin or a released checkpoint's shape.

Shapes (``--shape``): each family's tiny twin by its name (``tiny``, ``tiny-qwen2.5-omni``, ``tiny-qwen3-omni``:
2 s audio window, fp32) and each of its full-size shapes as ``<family>-<size>`` (``qwen2-audio-7b``,
``qwen2.5-omni-7b``, ``qwen2.5-omni-3b``, ``qwen3-omni-30b-a3b``: 30 s window, bf16), built by the family
(:meth:`models.family.ModelFamily.build_random`) with no download. ``7b`` is Qwen2-Audio-7B, the name the GPU check
and its results have used from the start. A full-size shape has random weights and the tiny tokenizer (its ids are a
subset of the vocabulary), so its outputs mean nothing, but every matrix has the real size: timings and memory are
the real model's (the Omni thinkers' vision tower, never fed, is a one-block stand-in: ``models/omni.py``).
"""

from __future__ import annotations

from typing import Any

ALIASES = {"7b": "qwen2-audio-7b"}  # kept: bench/gpu_check.sh and the results in bench/results name it


def shapes() -> dict[str, tuple[str, str | None]]:
    """Shape name -> (family name, full-size shape, or None for the family's tiny twin)."""
    from models.registry import FAMILIES

    table: dict[str, tuple[str, str | None]] = {}
    for family in FAMILIES.values():
        table[family.tiny_name] = (family.name, None)
        for size in family.full_shapes:
            table[f"{family.name}-{size}"] = (family.name, size)
    return {**table, **{alias: table[name] for alias, name in ALIASES.items()}}


def shape_names() -> list[str]:
    return list(shapes())


def resolve_shape(shape: str) -> tuple[Any, str | None]:
    """(family, full-size shape or None for its tiny twin) of a shape name; an unknown name lists the valid ones."""
    from models.registry import FAMILIES

    table = shapes()
    if shape not in table:
        raise ValueError(f"unknown shape {shape!r}; valid: {', '.join(table)}")
    family, size = table[shape]
    return FAMILIES[family], size


def is_tiny(shape: str) -> bool:
    return resolve_shape(shape)[1] is None


def random_model(shape: str, *, device: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, processor) with random weights, on ``device`` (default: the GPU if there is one). A tiny twin is
    fp32 unless ``dtype`` says otherwise; a full-size shape is bf16 unless it says otherwise."""
    import torch

    from models.saving import prepare_processor

    family, size = resolve_shape(shape)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if size is None:
        model, processor = family.build_tiny(seed=0)
        model = model.to(device=device, dtype=dtype or torch.float32)
    else:
        model, processor = family.build_random(size, device=device, dtype=dtype)
    return model.eval(), prepare_processor(processor)


def synthetic_benchmark(root: Any, n: int, seconds: float, *, seed: int = 0) -> Any:
    """An MMAU-format file of ``n`` items with ``seconds``-long random tone clips (2 choices each)."""
    import json
    from pathlib import Path

    import numpy as np

    from data.audio import write_wav

    root = Path(root)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    records = []
    for i in range(n):
        wave = (0.3 * np.sin(2 * np.pi * rng.uniform(150, 1500) * t)).astype(np.float32)
        item_id = f"bench{i:05d}"
        write_wav(root / "test-mini-audios" / f"{item_id}.wav", wave)
        records.append({"id": item_id, "audio_id": f"./test-mini-audios/{item_id}.wav",
                        "question": "Is the note high or low?", "choices": ["high", "low"], "answer": "high",
                        "task": ["sound", "music", "speech"][i % 3], "difficulty": "easy",
                        "sub-category": "pitch", "category": "pitch", "dataset": "bench", "split": "test-mini"})  # fmt: skip
    path = root / "bench.json"
    path.write_text(json.dumps(records))
    return path
