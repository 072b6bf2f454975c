"""Where the suite writes: one root for outputs and caches (a leaf module, so that any module may import it)."""

from __future__ import annotations

import os
from pathlib import Path


def output_root() -> Path:
    """Root of all outputs and caches: ``$R1AQA_OUTPUTS``, default ``outputs/`` (read at call time, for tests)."""
    return Path(os.environ.get("R1AQA_OUTPUTS", "outputs"))
