"""Command line for the suite's experiments.

    python -m experiments list
    python -m experiments run direct [--profile toy|paper] [--model M] [--seed N] [--output-dir DIR] [--set k=v ...]
    python -m experiments eval --model PATH_OR_ID --benchmark FILE_OR_DATASET [--audio-dir DIR] [--split S] [--prompt p2]
    python -m experiments paper [--profile toy|paper] [--model M] [--seeds 0 1 2]   # every Table 2 run, not done

Outputs go to ``outputs/<profile>/<experiment>/seed<N>/`` (``experiment.json``, ``predictions.json``,
``metrics.json``); with ``--model M`` (another model than the profile's own: a hub id, a checkpoint directory or a
local model such as ``toy-qwen2.5-omni``) to ``outputs/<profile>/<M>/<experiment>/seed<N>/``, ``/`` in M as ``--``.
``--set train.learning_rate=1e-5`` overrides one field and tags the run as ad hoc.

A run's whole configuration is validated before anything is loaded (``paper``: every run of the table before the
first starts); a bad setting, like a bad file, prints one line naming the field, the value and what is accepted,
and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from data.schema import DataError
from experiments.profiles import LOCAL_MODELS

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MODEL_HELP = (
    "another model than the profile's own: hub id, checkpoint directory or local model ("
    + ", ".join(LOCAL_MODELS)
    + ")"
)


def seed_arg(text: str) -> int:
    """A ``--seed`` value: a whole number from 0 to 2**32 - 1 (numpy's range), checked before anything is written."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed: give a whole number from 0 to {MAX_SEED}")
    return seed


def _list() -> None:
    from experiments.profiles import PROFILES
    from experiments.registry import REGISTRY

    width = max(len(n) for n in REGISTRY)
    tag_width = max(len(f"[{e.method}, {e.prompt}]") for e in REGISTRY.values())
    print("experiments:")
    for name, exp in REGISTRY.items():
        print(f"  {name:<{width}}  {f'[{exp.method}, {exp.prompt}]':<{tag_width}}  {exp.description}")
    print("profiles:")
    for name, prof in PROFILES.items():
        print(f"  {name:<{width}}  {prof.description}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the named experiments and profiles")

    p_run = sub.add_parser("run", help="run a named experiment")
    p_run.add_argument("name")
    p_run.add_argument("--profile", default=None, help="toy (default), paper or smoke; --resume: the stored one")
    p_run.add_argument("--model", default=None, help=MODEL_HELP + "; --resume: the stored one")
    p_run.add_argument("--seed", type=seed_arg, default=None, help="default 0; --resume: the stored one")
    p_run.add_argument("--output-dir", default=None)
    p_run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a field, e.g. train.learning_rate=1e-5 (tags the run ad hoc)")  # fmt: skip
    p_run.add_argument("--resume", action="store_true",
                       help="continue the run in its directory with its stored configuration (a finished run: no-op)")  # fmt: skip

    p_paper = sub.add_parser("paper", help="run every Table 2 experiment of a profile, skipping finished runs")
    p_paper.add_argument("--profile", default="toy")
    p_paper.add_argument("--model", default=None, help=MODEL_HELP)
    p_paper.add_argument("--seeds", type=seed_arg, nargs="+", default=[0])

    p_eval = sub.add_parser("eval", help="evaluate a checkpoint on a benchmark (MMAU test-mini, MMAR)")
    p_eval.add_argument("--model", required=True, help="hub id, checkpoint directory or local model ("
                        + ", ".join(LOCAL_MODELS) + ")")  # fmt: skip
    p_eval.add_argument("--benchmark", required=True,
                        help="question file (MMAU or MMAR, JSON or JSON lines), or a datasets dataset: a Hub id in "
                        "the local cache, a parquet file or a saved dataset directory (docs/benchmarks.md)")  # fmt: skip
    p_eval.add_argument("--audio-dir", default=None, help="directory that the question file's clip paths start from")
    p_eval.add_argument("--split", default=None, help="the dataset's split (--benchmark a dataset with several)")
    p_eval.add_argument("--prompt", default="p2", choices=["p1", "p2", "p3"])
    p_eval.add_argument("--output-dir", default=None, help="default: outputs/eval/<model name>")
    p_eval.add_argument("--batch-size", type=int, default=32)
    p_eval.add_argument("--max-new-tokens", type=int, default=None,
                        help="default 256; with --prompt p3 512 (the GRPO completion length: think, then answer)")  # fmt: skip
    p_eval.add_argument("--decoding", default="neutral", choices=["neutral", "checkpoint"],
                        help="neutral greedy (default), or the checkpoint's own generation config as the original "
                        "evaluation did")  # fmt: skip
    p_eval.add_argument("--silent-audio", action="store_true", help="replace every clip by silence (control)")
    p_eval.add_argument("--allow-missing-audio", action="store_true",
                        help="evaluate without items whose audio is missing (their ids go into metrics.json)")  # fmt: skip

    args = parser.parse_args(argv)
    from pathlib import Path

    from data.distributed import init_from_environment, is_main

    init_from_environment()  # under `accelerate launch --num_processes N`: join the process group first
    try:
        if args.command == "list":
            _list()
        elif args.command == "run":
            from experiments.runner import for_resume, resolve, run, stored_run, validate
            from experiments.spec import parse_set_args

            overrides = parse_set_args(args.overrides)
            stored = stored_run(Path(args.output_dir)) if args.resume and args.output_dir else None
            profile = args.profile or (stored.profile.name if stored else "toy")
            seed = args.seed if args.seed is not None else (stored.seed if stored else 0)
            model = args.model or (stored.profile.model if stored else None)
            resolved = resolve(args.name, profile, seed, args.output_dir, overrides, model=model)
            if args.resume:
                resolved = for_resume(resolved, overrides)
            validate(resolved)
            run(resolved, resume=args.resume)
            if is_main():
                print(f"outputs: {resolved.output_dir}")
        elif args.command == "paper":
            from experiments.runner import run_table2

            run_table2(args.profile, args.seeds, model=args.model)
        elif args.command == "eval":
            from data.hub_copies import is_dataset_source, materialise
            from experiments.compute import run_dtype
            from experiments.profiles import output_root, resolve_model_name
            from experiments.runner import evaluate_checkpoint
            from experiments.spec import EvalSpec, default_new_tokens

            model = resolve_model_name(args.model)
            out = args.output_dir or output_root() / "eval" / Path(str(args.model).rstrip("/")).name
            new_tokens = args.max_new_tokens if args.max_new_tokens is not None else default_new_tokens(args.prompt)
            spec = EvalSpec(batch_size=args.batch_size, max_new_tokens=new_tokens, decoding=args.decoding,
                            audio_mode="silent" if args.silent_audio else "real")  # fmt: skip
            benchmark, audio_dir = args.benchmark, args.audio_dir
            if is_dataset_source(benchmark):  # written out once as a question file and clips, then read as usual
                made = materialise(benchmark, split=args.split, cache_dir=output_root() / "cache" / "hub",
                                   progress=True)  # fmt: skip
                print(f"{benchmark}: read as {made.schema.name} ({made.n_rows} rows) -> {made.records_path}")
                benchmark, audio_dir = made.records_path, made.audio_dir
            evaluate_checkpoint(model, benchmark, audio_dir, out, prompt_id=args.prompt, eval_spec=spec,
                                allow_missing_audio=args.allow_missing_audio, compute_dtype=run_dtype(None))  # fmt: skip
            print(f"outputs: {out}")
    except (DataError, KeyError, FileNotFoundError, NotImplementedError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Here rather than in main(): tests that call main() in-process keep their own warning set-up.
    if sys.argv[1:2] != ["list"]:  # list needs no transformers/wandb imports
        from trainers.console import show_each_warning_once

        show_each_warning_once()
    sys.exit(main())
