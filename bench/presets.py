"""The Train page's size presets, timed as the page runs them: a `textgen.jobs` queue job of
`jobs.train_command` on uploaded text (tiny_shakespeare's 1.1 MB by default).

    textgen bench presets --json

Per preset: seconds from submitting the job to its first epoch sample (what a user waits for before
seeing anything the model wrote) and to the finished model. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def time_preset(queue, preset: str, text: bytes, cell: str) -> dict:
    from textgen import jobs

    name = f"bench_{preset}"
    files = jobs.save_upload(queue, name, [("upload.txt", text)])
    start = time.perf_counter()
    job = queue.submit(name, jobs.train_command(cell=cell, preset=preset, text_files=files, name=name))
    first_sample = None
    while True:
        queue.tick()
        job = queue.get(job.id)
        if first_sample is None and any(r.get("sample") for r in job.progress()):
            first_sample = time.perf_counter() - start
        if job.state not in ("queued", "running"):
            break
        time.sleep(0.5)
    if job.state != "done":
        raise SystemExit(f"{preset}: job ended {job.state}:\n{job.log_tail()}")
    return {"first_epoch_sample_s": round(first_sample, 1), "total_s": round(time.perf_counter() - start, 1),
            "epochs": sum(r.get("event") == "epoch" for r in job.progress())}


def main(argv=None) -> int:
    from textgen import jobs
    from textgen.data import SHIPPED_SOURCES

    parser = argparse.ArgumentParser(prog="textgen bench presets", description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(jobs.PRESETS), help="comma-separated (default: all)")
    parser.add_argument("--cell", default="gru", help="cell kind (default gru, the page's default)")
    parser.add_argument("--text", type=Path, default=SHIPPED_SOURCES / "tiny_shakespeare" / "input.txt",
                        help="the uploaded text (default: tiny_shakespeare, 1.1 MB)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = {"bench": "presets", "cell": args.cell, "text_bytes": args.text.stat().st_size}
    with tempfile.TemporaryDirectory(prefix="textgen-bench-presets-") as tmp:
        os.environ["TFDS_DATA_DIR"] = str(Path(tmp) / "tfds")  # the jobs prepare their corpus here
        queue = jobs.JobQueue(home=Path(tmp) / "home")
        for preset in args.presets.split(","):
            result[preset] = time_preset(queue, preset, args.text.read_bytes(), args.cell)
            if not args.json:
                print(f"{preset}: {result[preset]}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
