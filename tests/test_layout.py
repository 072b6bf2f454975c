"""The house's shape: docs/layout.md lists every module of the suite, one line each, and no module is too long.

A module over :data:`MAX_LINES` lines does more than one job (issue 24 asks for about 600); the import order and
the absence of circles are checked in ``tests/test_import_graph.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_import_graph import module_files

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = ROOT / "docs" / "layout.md"
MAX_LINES = 650
LISTED = re.compile(r"^- `([\w/.]+\.py)`: \S", re.MULTILINE)


def listed_files(text: str) -> list[str]:
    return LISTED.findall(text)


def test_layout_lists_every_module_once():
    listed = listed_files(LAYOUT.read_text(encoding="utf-8"))
    files = sorted(str(p.relative_to(ROOT)) for p in module_files().values())
    missing = sorted(set(files) - set(listed))
    gone = sorted(set(listed) - set(files))
    twice = sorted({f for f in listed if listed.count(f) > 1})
    assert not missing, f"{LAYOUT}: add one line for each of {missing}"
    assert not gone, f"{LAYOUT}: these modules no longer exist: {gone}"
    assert not twice, f"{LAYOUT}: listed more than once: {twice}"


def test_the_layout_reader_sees_a_missing_module():
    text = "- `data/io.py`: files.\n- `data/schema.py`: items.\n"
    assert listed_files(text) == ["data/io.py", "data/schema.py"]
    assert listed_files("- `data/io.py`:\n") == []  # a line needs its description


def test_no_module_is_too_long():
    long = {}
    for path in module_files().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[str(path.relative_to(ROOT))] = n
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"
