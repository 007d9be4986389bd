"""Many users at once: the batched sampler (`textgen.serving`) against one request at a time.

    textgen bench serving --clients 8 --seconds 20 --json

N client threads send 300-character requests (prompt "ROMEO:", each its own seed and temperature)
back to back for a fixed time, first through today's per-request path (each client streams from
the shared compiled `Sampler` itself in chunks of 32 characters, as every app session did) and then through one
`BatchedSampler`, in the same process and run. Requests started before the time is up are waited
for. Prints one JSON line: latency p50/p95 and aggregate chars/s of both paths, a lone request's
latency (one client, the direct path), and

    p95_ratio        batched p95 latency / a lone request's latency      (target <= 2 at 8 clients)
    aggregate_ratio  batched chars/s / per-request-path chars/s          (target >= 5 at 8 clients)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT = "ROMEO:"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_clients(call, clients: int, seconds: float, length: int) -> dict:
    """`clients` threads calling `call(prompt, params)` back to back until `seconds` have passed."""
    from textgen.sampling import SamplingParams

    latencies: list[float] = []
    chars = [0] * clients
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds

    def client(c: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            params = SamplingParams(length=length, temperature=0.6 + 0.05 * (c % 8), seed=1000 * c + i)
            begin = time.perf_counter()
            try:
                texts = call(PROMPT, params)
            except Exception as err:  # noqa: BLE001  (reported, the benchmark goes on)
                with lock:
                    errors.append(f"{type(err).__name__}: {err}")
                return
            elapsed = time.perf_counter() - begin
            if len(texts[0]) != length:
                with lock:
                    errors.append(f"client {c} got {len(texts[0])} characters, expected {length}")
            with lock:
                latencies.append(elapsed)
            chars[c] += len(texts[0])
            i += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if not latencies:
        raise SystemExit(f"no request finished: {errors[:3]}")
    return {"requests": len(latencies), "p50_s": round(statistics.median(latencies), 4),
            "p95_s": round(_percentile(latencies, 95), 4), "max_s": round(max(latencies), 4),
            "chars_per_s": round(sum(chars) / wall, 1), "wall_s": round(wall, 2), "errors": errors[:5]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="textgen bench serving", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "saved_models" / "shakespeare_char"))
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="sending time per path (default 20)")
    parser.add_argument("--length", type=int, default=300, help="characters per request (default 300)")
    parser.add_argument("--chunk", type=int, default=32, help="batched sampler steps per call (default 32)")
    parser.add_argument("--max-batch", type=int, default=64, help="batched sampler rows per call (default 64)")
    parser.add_argument("--workers", type=int, default=1,
                        help="batched sampler: batches run side by side, one thread each (default 1)")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "int8"),
                        help="weights of both paths (default float32, the app's default)")
    parser.add_argument("--stream-chunk", type=int, default=32,
                        help="per-request path: characters per streamed chunk, as the app page (default 32)")
    parser.add_argument("--lone", type=int, default=10, help="lone requests timed for the reference (default 10)")
    parser.add_argument("--skip-per-request", action="store_true",
                        help="only the batched path (e.g. 32 clients, where the per-request path takes minutes)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.length < 1:
        parser.error("--clients, --seconds and --length must be positive")

    import tensorflow as tf

    from textgen.sampling import SamplingParams, load_sampler
    from textgen.serving import BatchedSampler

    sampler = load_sampler(args.model, precision=args.precision)
    sampler.warm_up(PROMPT, args.length, sampler.chunk_size)
    sampler.warm_up(PROMPT, args.length, args.stream_chunk)

    def per_request_call(prompt, params):
        pieces = [""] * params.num_samples
        for chunk in sampler.stream(prompt, params, chunk_size=args.stream_chunk):
            pieces = [p + c for p, c in zip(pieces, chunk)]
        return pieces

    lone = []
    for i in range(args.lone):
        begin = time.perf_counter()
        sampler.generate(PROMPT, SamplingParams(length=args.length, temperature=0.8, seed=i))
        lone.append(time.perf_counter() - begin)
    lone_s = statistics.median(lone)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    log(f"lone request: {lone_s:.3f} s")

    per_request = None
    if not args.skip_per_request:
        per_request = run_clients(per_request_call, args.clients, args.seconds, args.length)
        log(f"per-request path: {per_request}")

    batcher = BatchedSampler(sampler, max_batch=args.max_batch, chunk_size=args.chunk, workers=args.workers)
    warm = time.perf_counter()
    batcher.warm_up(args.clients)
    warm_s = time.perf_counter() - warm
    calls0 = batcher.calls
    batched = run_clients(batcher.generate, args.clients, args.seconds, args.length)
    batched["compiled_calls"] = batcher.calls - calls0
    batched["warm_up_s"] = round(warm_s, 2)
    batcher.close()
    log(f"batched: {batched}")

    result = {
        "benchmark": "serving", "model": Path(args.model).name, "precision": args.precision, "clients": args.clients, "seconds": args.seconds,
        "length": args.length, "chunk": args.chunk, "max_batch": args.max_batch, "workers": args.workers,
        "lone_request_s": round(lone_s, 4), "per_request": per_request, "batched": batched,
        "p95_ratio": round(batched["p95_s"] / lone_s, 3),
        "aggregate_ratio": round(batched["chars_per_s"] / per_request["chars_per_s"], 2) if per_request else None,
        "targets": {"p95_ratio_max": 2.0, "aggregate_ratio_min": 5.0},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
                    "load_avg": [round(x, 2) for x in os.getloadavg()]},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
