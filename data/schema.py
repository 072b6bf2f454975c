"""The one item schema shared by every source (AVQA, MMAU, the toy world) and every consumer.

An :class:`Item` is a multiple-choice audio question. ``answer`` is the *text* of the correct choice (not an index),
as in MMAU; loaders convert AVQA's 0-based index on the way in. Benchmark-only fields (task, category, ...) are None
for training data. ``record`` keeps the source record untouched so that predictions can be written back in the
source's own format (MMAU's official scorer reads the original fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class DataError(ValueError):
    """Bad input data: the message names the file, the record and the fix."""


@dataclass(frozen=True)
class Item:
    id: str
    audio_path: str
    question: str
    choices: tuple[str, ...]
    answer: str
    task: str | None = None
    category: str | None = None
    sub_category: str | None = None
    difficulty: str | None = None
    source: str | None = None
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # A tuple keeps items hashable and stops accidental in-place edits of the choices.
        object.__setattr__(self, "choices", tuple(self.choices))
