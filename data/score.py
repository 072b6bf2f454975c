"""Score a benchmark predictions file (MMAU test-mini or MMAR) with the official token-set string-match rule.

    python -m data.score PRED.json [--key KEY] [--benchmark mmau-test-mini|mmar] [--out METRICS.json]
                         [--per-item ITEMS.jsonl]

PRED.json (a JSON list, or JSON lines for ``.jsonl``) is the benchmark's question file with each record's
prediction added under ``--key``: by default the key the benchmark's official script reads (MMAU ``model_output``;
``model_prediction`` in older MMAU scripts and the original R1-AQA code; MMAR ``answer_prediction``). The rule is
applied to the stored string as is, as the official scripts do. Prints a table (accuracy per column: MMAU's task,
MMAR's modality; the average with n and 95% Wilson intervals; then MMAU's difficulty or MMAR's category layer),
writes the metrics as JSON (atomically: every breakdown of the registry's entry) and one JSON line per item.

The benchmark and its version are recognised from the question content (the prediction key and any other extra
fields are ignored) and written as ``"benchmark"`` and ``"version"``; a file that covers only part of a known
version, or an edited one, is ``"unknown"``. MMAR's first release has 6 items whose answer is none of their
choices: they are scored by the official rule, as its leaderboard does, listed (``answer_outside_choices_ids``) and
warned about.

Exits 2 with a one-line message on bad input (a record without the key, not a list of records, ...); unlike the
official scripts, records without a prediction are never silently skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from data.benchmark import read_records, score_records
from data.benchmark_registry import BENCHMARKS, get_benchmark
from data.io import sha256_file, write_json_atomic, write_text_atomic
from data.schema import DataError
from data.scoring import format_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.score", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "predictions", type=Path, help="benchmark-format JSON list (or .jsonl) with a prediction per record"
    )
    parser.add_argument("--key", help="record field holding the prediction (default: the official script's key)")
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), help="the benchmark (default: recognised)")
    parser.add_argument("--out", type=Path, help="write the metrics JSON here")
    parser.add_argument("--per-item", type=Path, help="write one JSON line per item here (id, task, correct, ...)")
    args = parser.parse_args(argv)

    try:
        records = read_records(args.predictions)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics, rows = score_records(records, key=args.key, source=str(args.predictions),
                                          benchmark=args.benchmark)  # fmt: skip
    except (DataError, OSError) as e:
        # One line, no traceback: the message already names the file, the ids and the fix.
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"warning: {' '.join(str(w.message).split())}", file=sys.stderr)

    spec = get_benchmark(metrics["benchmark"])
    out = {
        "benchmark": metrics.pop("benchmark"),
        "version": metrics.pop("version"),
        "predictions": str(args.predictions),
        "predictions_sha256": sha256_file(args.predictions),
        "key": metrics.pop("key"),
        "rule": metrics.pop("rule"),
        **metrics,
    }
    print(f"{spec.title} version: {out['version']}   ({args.predictions}, key {out['key']!r})")
    print(format_table(metrics))
    if args.out:
        write_json_atomic(args.out, out)
    if args.per_item:
        write_text_atomic(args.per_item, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
