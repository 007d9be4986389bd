"""The `textgen` command: argparse subcommands that parse, build a config and call one function.

No ML logic lives here. User errors (bad flags, bad config, missing data) print one clear line
to stderr and exit with code 2; they never show a stack trace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

# Quiet TensorFlow's C++ start-up logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2


from textgen.errors import TextgenError


class UserError(TextgenError):
    """A bad combination of flags found by the CLI itself."""


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=None, sort_keys=False, default=str))


# --------------------------------------------------------------------------------------------
# textgen data prepare | describe


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare and describe the corpora (TFDS)")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{prepare,describe}")
    names = "tiny_shakespeare | imdb_reviews | aclimdb | vader_sentiment/{movies,tweets,amazon,nyt,all}"
    for name, help_text in (("prepare", "download or read the source files and build the TFDS dataset"),
                            ("describe", "count examples, characters and labels per split")):
        p = data_sub.add_parser(name, help=help_text)
        p.add_argument("name", help=f"dataset name: {names}")
        p.add_argument("--data-dir", default=None,
                       help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
        p.add_argument("--manual-dir", default=None,
                       help="folder holding manually downloaded source files (offline preparation)")
        if name == "describe":
            p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=_run_data_prepare if name == "prepare" else _run_data_describe)


def _run_data_prepare(args) -> int:
    from textgen import data

    info = data.prepare(args.name, data_dir=args.data_dir, manual_dir=args.manual_dir)
    print(f"prepared {info['name']} in {info['data_dir']}")
    return 0


def _run_data_describe(args) -> int:
    from textgen import data

    summary = data.describe(args.name, data_dir=args.data_dir, manual_dir=args.manual_dir)
    if args.json:
        _print_json(summary)
    else:
        print(summary["name"])
        for split, stats in summary["splits"].items():
            print(f"  {split}: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return 0


# --------------------------------------------------------------------------------------------
# textgen bench NAME [args...]: runs bench/NAME.py (each prints one JSON line)

BENCHMARKS = {
    "generation": "tutorial loop vs compiled sampler, chars/s at batch 1 and 64",
    "sentiment": "predict latency p50 at batch 1 and texts/s at batch 256",
    "training": "tutorial model.fit vs our training path, chars/s",
}


def add_bench_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="run a benchmark from bench/ (prints one JSON line)")
    bench.add_argument("name", choices=sorted(BENCHMARKS), help="; ".join(f"{k}: {v}" for k, v in BENCHMARKS.items()))
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed to the benchmark (e.g. --json)")
    bench.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    import importlib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if not (repo / "bench" / f"{args.name}.py").is_file():
        raise UserError(f"bench/{args.name}.py not found: benchmarks run from a source checkout")
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    module = importlib.import_module(f"bench.{args.name}")
    return int(module.main(args.bench_args) or 0)


# --------------------------------------------------------------------------------------------
# Router

# One entry per section above; a new concern adds its section and its entry here.
COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [add_data_commands, add_bench_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textgen",
        description="Recurrent neural networks for character-level text generation and sentiment.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMAND_GROUPS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 on bad flags
    try:
        return int(args.func(args) or 0)
    except TextgenError as err:
        print(f"textgen: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("textgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
