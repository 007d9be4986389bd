"""`textgen bench NAME [args...]`: runs bench/NAME.py from a source checkout (each prints one JSON line)."""

from __future__ import annotations

import argparse
import sys

from textgen.commands import UserError


BENCHMARKS = {
    "generation": "tutorial loop vs compiled sampler, chars/s at batch 1 and 64",
    "sentiment": "predict latency p50 at batch 1 and texts/s at batch 256",
    "training": "tutorial model.fit vs our training path, chars/s",
    "presets": "the Train page's tiny and small presets: seconds to the first epoch sample and to the model",
    "prepare": "own-text corpus preparation MB/s and peak RSS (200 MB generated), training peak RSS",
    "serving": "N concurrent clients: batched sampler vs one request at a time, p50/p95 latency and chars/s",
}


def add_bench_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="run a benchmark from bench/ (prints one JSON line)")
    bench.add_argument("name", choices=sorted(BENCHMARKS), help="; ".join(f"{k}: {v}" for k, v in BENCHMARKS.items()))
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed to the benchmark (e.g. --json)")
    bench.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    import importlib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]  # textgen/commands/bench.py -> the repository root
    if not (repo / "bench" / f"{args.name}.py").is_file():
        raise UserError(f"bench/{args.name}.py not found: benchmarks run from a source checkout")
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    module = importlib.import_module(f"bench.{args.name}")
    return int(module.main(args.bench_args) or 0)
