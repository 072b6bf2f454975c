"""The tiny offline twins of every family: built once from their config classes, cached, loadable by name.

    python -m models.tiny --family qwen2.5-omni --out outputs/cache/tiny-omni   # build and save one

``--model tiny`` (Qwen2-Audio), ``tiny-qwen2.5-omni`` and ``tiny-qwen3-omni`` name them on any profile; they are
random (untrained) models whose numbers mean nothing, for tests and smoke runs. Each is saved in its hub checkpoint's
layout, so loading one runs the real loading path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from data.io import build_once, sources_digest
from models.family import ModelFamily
from models.registry import FAMILIES
from models.tokenizer import tiny_tokenizer_words

TINY_MODELS: dict[str, ModelFamily] = {f.tiny_name: f for f in FAMILIES.values()}


def tiny_model_fingerprint(seed: int = 0, family: ModelFamily | None = None, **kwargs: Any) -> str:
    """A content hash of what defines a tiny twin (its code, seed and tokenizer words), for caching."""
    family = family or FAMILIES["qwen2-audio"]
    spec = {
        "seed": seed,
        "words": tiny_tokenizer_words(),
        "kwargs": sorted(kwargs.items()),
        "source": sources_digest(family.tiny_sources()),  # a change there rebuilds the model
        "family": family.name,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def ensure_tiny_model(cache_dir: str | Path, seed: int = 0, family: ModelFamily | None = None) -> Path:
    """Build and save a tiny twin under ``cache_dir/<tiny name>-<hash>`` once; later calls return the saved copy."""
    family = family or FAMILIES["qwen2-audio"]
    path = Path(cache_dir) / f"{family.tiny_name}-{tiny_model_fingerprint(seed, family)}"

    def build(partial: Path) -> Path:
        return family.save_tiny(*family.build_tiny(seed), partial)

    return build_once(path, build, done="model.safetensors")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory to save the tiny model into")
    parser.add_argument("--family", default="qwen2-audio", choices=list(FAMILIES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    family = FAMILIES[args.family]
    model, processor = family.build_tiny(args.seed)
    family.save_tiny(model, processor, Path(args.out))
    n = sum(p.numel() for p in model.parameters())
    print(f"tiny {family.title} ({n:,} parameters, vocab {len(processor.tokenizer)}) saved to {args.out}")


if __name__ == "__main__":
    main()
