"""The toy bases that ship with the repository: one base per family for every machine, checked by checksum.

A toy base built on one CPU differs from one built on another (float order in 3000 training steps), and each gave
its own toy table. So the bases live in the repository, under ``assets/toy-bases/<name>/`` (the model, its
processor files and ``base_report.json``), with ``SHIPPED.json``: the sha256 of every file, the settings
(:class:`experiments.toy_base.ToyBaseSpec`) and the fingerprint of the code that built it, and where it was built.
The toy profile starts from the shipped base of its family (``experiments.toy_base.toy_base_model``); a base of
other settings (another seed: the robustness table) is still built and cached under ``outputs/cache/``.

Replacing a shipped base is explicit: ``python -m experiments.toy_base --ship`` builds one from this code (or
reuses the cached build) and copies it here. Nothing else writes under ``assets/``.

    python -m experiments.toy_base                   # the shipped base's report, and whether this code builds it
    python -m experiments.toy_base --ship            # rebuild from this code and replace the shipped base
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from data.io import read_json, replace_file_set, sha256_file
from data.schema import DataError

SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "assets" / "toy-bases"
MANIFEST = "SHIPPED.json"
# The files a base is used from (the build's zero_shot/ predictions stay in the cache).
FILES = ("base_report.json", "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
         "processor_config.json", "tokenizer.json", "tokenizer_config.json")  # fmt: skip


def shipped_dir(name: str, root: Path | None = None) -> Path:
    return (root or SHIPPED_ROOT) / name


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The shipped base's manifest, or None when no base is shipped at ``path``."""
    return read_json(path / MANIFEST) if (path / MANIFEST).is_file() else None


def check_shipped(path: Path) -> dict[str, Any]:
    """The manifest of the shipped base at ``path``, after checking every file against its sha256; a missing or
    changed file is a :class:`DataError` naming it and the fix."""
    manifest = read_manifest(path)
    if manifest is None:
        raise DataError(f"{path}: no {MANIFEST}; restore it (git checkout -- {path}) or ship a base there "
                        "(python -m experiments.toy_base --ship)")  # fmt: skip
    bad = []
    for name, digest in sorted(manifest["files"].items()):
        file = path / name
        if not file.is_file():
            bad.append(f"{name} missing")
        elif sha256_file(file) != digest:
            bad.append(f"{name} changed (sha256 {sha256_file(file)[:12]}..., shipped {digest[:12]}...)")
    if bad:
        raise DataError(f"{path}: the shipped toy base is not as shipped: {'; '.join(bad)}. Restore it (git checkout "
                        f"-- {path}; a Git LFS pointer needs `git lfs pull`) or ship a new one on purpose "
                        "(python -m experiments.toy_base --ship)")  # fmt: skip
    return manifest


def ship(built: Path, name: str, *, spec: dict[str, Any], fingerprint: str, root: Path | None = None) -> Path:
    """Copy the base built in ``built`` to the shipped place of ``name`` (replacing what is there as one set) with
    its manifest; returns the shipped directory."""
    import json

    from data.machine import machine_info

    machine = machine_info()
    manifest = {
        "name": name, "spec": spec, "fingerprint": fingerprint,
        "files": {f: sha256_file(built / f) for f in FILES},
        "built_on": {"cpu": machine.get("cpu_model", platform.processor()), "torch": machine["torch"],
                     "torch_threads": machine["torch_threads"]},
        "rebuild": "python -m experiments.toy_base --family {family} --ship".format(family=spec["family"]),
    }  # fmt: skip
    files = {f: (built / f).read_bytes() for f in FILES}
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    target = shipped_dir(name, root)
    replace_file_set(target, files)
    return target
