"""Score an MMAU-format predictions file with the official MMAU string-match rule.

    python -m data.score PRED.json [--key model_output] [--out METRICS.json] [--per-item ITEMS.jsonl]

PRED.json is the MMAU question file with each record's prediction added under ``--key`` (``model_output`` in the
current MMAU script, ``model_prediction`` in older ones and in the original R1-AQA code). The rule is applied to the
stored string as is, as the official script does. Prints a table (sound, music, speech, average with n and 95%
Wilson intervals, then per difficulty), writes the metrics as JSON (atomically) and one JSON line per item.

The benchmark version is recognised from the question content (ids, questions, choices, answers, task, difficulty,
sub-category; the prediction key and any other extra fields are ignored) and written as ``"version"``; a file that
covers only part of a known version, or an edited one, is ``"unknown"``.

Exits 2 with a one-line message on bad input (a record without the key, not a list of records, ...); unlike the
official script, records without a prediction are never silently skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from data.io import read_json, sha256_file, write_json_atomic, write_text_atomic
from data.mmau import detect_version, score_records
from data.schema import DataError
from data.scoring import format_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="MMAU-format JSON list with a prediction per record")
    parser.add_argument("--key", default="model_output", help="record field holding the prediction")
    parser.add_argument("--out", type=Path, help="write the metrics JSON here")
    parser.add_argument("--per-item", type=Path, help="write one JSON line per item here (id, task, correct, ...)")
    args = parser.parse_args(argv)

    try:
        records = read_json(args.predictions)
        metrics, rows = score_records(records, key=args.key, source=str(args.predictions))
    except (DataError, OSError) as e:
        # One line, no traceback: the message already names the file, the ids and the fix.
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2

    version = detect_version(records)
    out = {
        "version": version,
        "predictions": str(args.predictions),
        "predictions_sha256": sha256_file(args.predictions),
        "key": args.key,
        "rule": "mmau_string_match",
        **metrics,
    }
    print(f"MMAU test-mini version: {version}   ({args.predictions}, key {args.key!r})")
    print(format_table(metrics))
    if args.out:
        write_json_atomic(args.out, out)
    if args.per_item:
        write_text_atomic(args.per_item, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
