"""Writing a model and its processor to a directory, and the processor settings every family's batches assume.

Imports nothing of the suite's, so the family modules (``models/family.py``, ``models/omni.py``) can use it without
an import cycle through ``models.loading`` and ``models.registry``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_model(model: Any, processor: Any, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir


def prepare_processor(processor: Any) -> Any:
    """Left-pad text (batched generation) and right-pad audio (the encoders assume valid frames come first)."""
    processor.tokenizer.padding_side = "left"
    fe = processor.feature_extractor
    if getattr(fe, "padding_side", "right") != "right":
        fe.padding_side = "right"
    return processor
