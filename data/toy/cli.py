"""The toy world's command line, ``python -m data.toy`` (through ``data/toy/__main__.py``).

Run::

    python -m data.toy --out outputs/toy                      # train 3000, val 300, test 1980, mix 990 items, seed 0
    python -m data.toy --out /tmp/toy --seed 1 --sizes train=300,val=30,test=60 --check
    python -m data.toy check --out outputs/toy                # can text alone answer it? (see data/toy/check.py)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from data.toy import check
from data.toy.generate import generate_world, parse_sizes
from data.toy.mix import DEFAULT_MIX_SIZE, generate_mix
from data.toy.world import DIFFICULTIES, SPLITS


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data.toy --out DIR ...`` generates a world; ``python -m data.toy check ...`` checks one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # A leading word, not an argparse subparser: the generator's own command line stays exactly as it was.
    if argv[:1] == ["check"]:
        return check.main(argv[1:])
    ap = argparse.ArgumentParser(
        prog="python -m data.toy",
        description='A synthetic audio-question-answering "toy world" that a tiny Qwen2-Audio model can learn on '
        "CPU in minutes.",
        epilog="python -m data.toy check --out DIR: chance, text-only oracles and an audio classifier per split",
    )
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default=None, help="e.g. train=3000,val=300,test=1980 (unnamed splits keep defaults)")
    ap.add_argument(
        "--mix",
        type=int,
        default=DEFAULT_MIX_SIZE,
        help=f"items of the mixed test in MMAR's shape, under OUT/mix/ (default {DEFAULT_MIX_SIZE})",
    )
    ap.add_argument("--check", action="store_true", help="also print simple-feature separability per sub-category")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as e:
        ap.error(str(e))
    start = time.perf_counter()
    manifest = generate_world(args.out, seed=args.seed, sizes=sizes, progress=not args.no_progress)
    generate_mix(f"{args.out}/mix", seed=args.seed, n=args.mix, progress=not args.no_progress)
    print(f"wrote {sum(sizes.values()) + args.mix} clips to {args.out} in {time.perf_counter() - start:.1f} s")
    print("chance accuracy (uniform pick among the listed choices):")
    for split in SPLITS:
        c = manifest["chance"][split]
        per = "  ".join(f"{t} {v:.3f}" for t, v in c["per_task"].items())
        overall = "n/a" if c["overall"] is None else f"{c['overall']:.3f}"
        print(f"  {split:5s} overall {overall}  {per}  (n={c['n']})")
    if args.check:
        print("nearest-centroid accuracy of one simple feature per sub-category (train, 2-fold):")
        for name, acc in check.separability(args.out, "train").items():
            cells = "  ".join(f"{d} {acc[d]:.2f}" for d in DIFFICULTIES if d in acc)
            print(f"  {name:15s} chance {acc['chance']:.2f}  {cells}")
    return 0
