"""The Train page's job queue (textgen.jobs) with real `textgen train` subprocesses: one at a time,
places in line, a server restart (a new queue object) finds the job interrupted, Resume continues it."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from textgen import jobs
from textgen.data import SHIPPED_SOURCES

TEXT = (SHIPPED_SOURCES / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8")[:30000]


def _argv(text_file, name, epochs=2):
    return ["train", "charlm", "--text-file", str(text_file), "--dataset", name, "--units", "16", "--embedding-dim",
            "8", "--epochs", str(epochs), "--steps-per-epoch", "8", "--batch-size", "8", "--seq-len", "32",
            "--patience", "0", "--sample-chars", "20", "--seed", "1"]


def _wait(queue, job_id, states, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue.tick()
        job = queue.get(job_id)
        if job.state in states:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {queue.get(job_id).state}; log:\n{queue.get(job_id).log_tail()}")


@pytest.fixture
def queue(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    return jobs.JobQueue(home=tmp_path / "home")


def test_submit_refuses_bad_names_duplicates_and_existing_models(queue, tmp_path):
    for bad in ("", "Has Space", "../up", "x" * 65):
        with pytest.raises(jobs.JobError, match="not a valid model name"):
            queue.submit(bad, ["train", "charlm"])
    queue.submit("one", ["train", "charlm"])
    with pytest.raises(jobs.JobError, match="already queued"):
        queue.submit("one", ["train", "charlm"])
    (queue.models_dir / "two").mkdir(parents=True)
    (queue.models_dir / "two" / "model.keras").write_bytes(b"x")
    with pytest.raises(jobs.JobError, match="already exists"):
        queue.submit("two", ["train", "charlm"])
    with pytest.raises(jobs.JobError, match="cell must be"):
        jobs.train_command(cell="transformer", preset="tiny", text_files=["a"], name="x")
    with pytest.raises(jobs.JobError, match="custom size needs"):
        jobs.train_command(cell="gru", preset="custom", text_files=["a"], name="x")
    argv = jobs.train_command(cell="lstm", preset="small", corpus="plays", name="x")
    assert argv[:4] == ["train", "charlm", "--dataset", "plays"] and "--sample-chars" in argv


def test_save_upload_refuses_binary_non_utf8_empty_and_too_much(queue):
    with pytest.raises(jobs.JobError, match="binary"):
        jobs.save_upload(queue, "a", [("photo.txt", b"\x89PNG\x00\x00")])
    with pytest.raises(jobs.JobError, match=r"notes\.txt is not utf-8 text: cannot decode byte 0xe9 at byte offset 3"):
        jobs.save_upload(queue, "a", [("notes.txt", "caf\u00e9".encode("latin-1"))])
    with pytest.raises(jobs.JobError, match="no text"):
        jobs.save_upload(queue, "a", [])
    with pytest.raises(jobs.JobError, match="at most 20 MB"):
        jobs.save_upload(queue, "a", [("big.txt", b"a" * (jobs.MAX_UPLOAD_BYTES + 1))])
    paths = jobs.save_upload(queue, "a", [("my text.txt", "\u6625\u6c5f".encode("utf-8"))])
    assert len(paths) == 1 and open(paths[0], encoding="utf-8").read() == "\u6625\u6c5f"
    assert not [p for p in (queue.uploads_dir / "a").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_one_job_at_a_time_then_interrupted_and_resumed(queue, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    first = queue.submit("first", _argv(text, "first", epochs=1))
    second = queue.submit("second", _argv(text, "second", epochs=3))
    queue.tick()
    assert queue.get(first.id).state == "running" and queue.get(second.id).state == "queued"
    assert queue.place(second.id) == 1 and queue.place(first.id) is None
    done = _wait(queue, first.id, ("done", "failed"))
    assert done.state == "done", done.log_tail()
    assert (queue.models_dir / "first" / "model.keras").is_file()
    epochs = [r for r in done.progress() if r["event"] == "epoch"]
    assert len(epochs) == 1 and len(epochs[0]["sample"]) == 20 and "val_loss" in epochs[0]
    running = _wait(queue, second.id, ("running",))
    # The server restarts while the second job trains: a new queue object, and the process is killed.
    deadline = time.monotonic() + 300
    while not any(r["event"] == "epoch" for r in running.progress()):
        assert time.monotonic() < deadline, running.log_tail()
        time.sleep(0.5)
    os.killpg(running.pid, signal.SIGKILL)
    restarted = jobs.JobQueue(home=queue.home)
    time.sleep(0.5)
    restarted.tick()
    assert restarted.get(second.id).state == "interrupted"
    restarted.resume(second.id)
    resumed = _wait(restarted, second.id, ("done", "failed"))
    assert resumed.state == "done", resumed.log_tail()
    meta = json.loads((queue.models_dir / "second" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["resumes"] == 1 and meta["epochs_run"] == 3  # continued after the last completed epoch


@pytest.mark.slow
def test_stop_keeps_the_best_weights_so_far_and_cancel_a_queued_job(queue, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    long = queue.submit("long", _argv(text, "long", epochs=50))
    waiting = queue.submit("waiting", _argv(text, "waiting"))
    running = _wait(queue, long.id, ("running",))
    deadline = time.monotonic() + 300
    while not any(r["event"] == "epoch" for r in running.progress()):
        assert time.monotonic() < deadline, running.log_tail()
        time.sleep(0.5)
    queue.stop(waiting.id)
    assert queue.get(waiting.id).state == "cancelled"
    queue.stop(long.id)
    stopped = _wait(queue, long.id, ("stopped", "done", "failed"))
    assert stopped.state == "stopped", stopped.log_tail()
    meta = json.loads((queue.models_dir / "long" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["epochs_run"] < 50 and meta["validation"]["best_epoch"] >= 1
    queue.tick()
    assert queue.running() is None  # the cancelled job never starts
