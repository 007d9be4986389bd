"""Own-text preparation at scale: MB/s and peak memory of `textgen data prepare text` on a large corpus,
and the peak memory of a short `textgen train charlm` on it (the training path streams the TFDS pieces).

    textgen bench prepare --mb 200 --json

Each step runs as its own `textgen` process, so its peak resident memory (ru_maxrss of the child) is
its own. The corpus is `bench.corpora.generated` (words of tiny_shakespeare, Zipf-like), written to a
temporary folder. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run_child(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of `python -m textgen <argv>` run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "textgen", *argv], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"textgen {' '.join(argv[:3])} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux: the largest child so far
    if peak <= before:
        raise SystemExit("cannot attribute peak memory: an earlier child used more (run each step alone)")
    return seconds, peak / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="textgen bench prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0, help="corpus size in MB (default 200)")
    parser.add_argument("--train-steps", type=int, default=20,
                        help="training steps of the memory check; 0 = skip training (default 20)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    from bench.corpora import generated

    with tempfile.TemporaryDirectory(prefix="textgen-bench-prepare-") as tmp:
        tmp = Path(tmp)
        corpus = tmp / "big.txt"
        start = time.perf_counter()
        made = generated(corpus, args.mb)
        gen_s = time.perf_counter() - start
        size_mb = made["bytes"] / 1e6
        # The training run is the heavier child; run the preparation first so its peak is measured alone.
        prep_s, prep_rss = _run_child(["data", "prepare", "text", "--name", "bench_big", str(corpus),
                                       "--data-dir", str(tmp / "tfds")])
        result = {"bench": "prepare", "corpus_mb": round(size_mb, 1), "generate_s": round(gen_s, 1),
                  "prepare_s": round(prep_s, 1), "prepare_mb_per_s": round(size_mb / prep_s, 2),
                  "prepare_peak_rss_mb": round(prep_rss, 1)}
        if args.train_steps:
            train_s, train_rss = _run_child([
                "train", "charlm", "--dataset", "bench_big", "--data-dir", str(tmp / "tfds"), "--cell", "gru",
                "--units", "64", "--embedding-dim", "16", "--epochs", "1", "--steps-per-epoch", str(args.train_steps),
                "--validation-steps", "5", "--batch-size", "32", "--seq-len", "100", "--seed", "1", "--quiet",
                "--out", str(tmp / "run")])
            result.update({"train_s": round(train_s, 1), "train_steps": args.train_steps,
                           "train_peak_rss_mb": round(train_rss, 1)})
    if not args.json:
        print(f"{size_mb:.0f} MB prepared at {result['prepare_mb_per_s']} MB/s, peak RSS "
              f"{result['prepare_peak_rss_mb']} MB", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
