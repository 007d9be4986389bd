"""Multi-worker training: two worker processes on 127.0.0.1 end with identical weights and only
the chief writes a model directory."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from textgen import distributed
from textgen.artifacts import load_model_dir


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _finish(procs) -> list[str]:
    """Each worker's stdout, once all have exited 0."""
    outputs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=300)
            outputs.append(stdout)
            assert p.returncode == 0, stderr[-3000:]
    finally:
        for p in procs:
            p.kill()
    return outputs


def _start_workers(ports, out, data_dir, epochs=3, steps=30, other_out=None):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(len(ports)):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        # Every worker gets the same --out (a shared folder): the chief writes it, the others read it.
        cmd = [sys.executable, "-m", "textgen", "train", "charlm", "--strategy", "multiworker",
               "--data-dir", str(data_dir), "--out", str(other_out if index and other_out else out),
               "--cell", "gru", "--units", "16",
               "--embedding-dim", "8", "--epochs", str(epochs), "--steps-per-epoch", str(steps),
               "--validation-steps", "2", "--batch-size", "8", "--seq-len", "20", "--seed", "5", "--quiet"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def test_chief_is_worker_0_or_the_chief_task(monkeypatch):
    cluster = {"worker": ["a:1", "b:2"]}
    for task, chief in (({"type": "worker", "index": 0}, True), ({"type": "worker", "index": 1}, False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
        assert distributed.is_chief() is chief
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {**cluster, "chief": ["c:3"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert distributed.is_chief() is False
    monkeypatch.delenv("TF_CONFIG")
    assert distributed.is_chief() is True
    with pytest.raises(distributed.StrategyError, match="TF_CONFIG"):
        distributed.make_strategy("multiworker")


@pytest.mark.slow
@pytest.mark.distributed
def test_a_multiworker_run_resumes_after_a_worker_is_killed(shakespeare_data_dir, tmp_path):
    """Two local workers; the second is killed mid-epoch after the first checkpoint, the job stops
    (the chief cannot go on alone), the same command is run again: both workers resume after the
    completed epoch, finish with bit-identical weights, and only the chief writes the model, into
    the same --out (the other trains in a scratch folder that it deletes)."""
    import time

    out = tmp_path / "run"
    procs = _start_workers(_free_ports(2), out, shakespeare_data_dir)
    try:
        deadline = time.monotonic() + 300
        state = out / ".resume" / "state.json"
        while not (state.is_file() and json.loads(state.read_text())["epoch"] >= 1):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "no checkpoint written"
            time.sleep(0.2)
        procs[1].kill()  # mid-epoch 2
        procs[0].kill()  # the job restarts as a whole (a cluster manager would do this)
    finally:
        for p in procs:
            p.kill()
            p.communicate()
    assert not (out / "model.keras").exists() and json.loads(state.read_text())["epoch"] in (1, 2)
    resumed_from = json.loads(state.read_text())["epoch"]

    # A worker that cannot see the chief's folder would start from scratch: both refuse.
    procs = _start_workers(_free_ports(2), out, shakespeare_data_dir, other_out=tmp_path / "elsewhere")
    try:
        errors = [p.communicate(timeout=300)[1] for p in procs]
        assert [p.returncode for p in procs] == [2, 2]
        assert all("the workers disagree on the epoch the workers resume from" in e for e in errors), errors[0][-2000:]
    finally:
        for p in procs:
            p.kill()
    assert json.loads(state.read_text())["epoch"] == resumed_from  # nothing was trained or lost
    assert not (tmp_path / "elsewhere").exists()  # a worker that is not the chief never writes its --out

    outputs = _finish(_start_workers(_free_ports(2), out, shakespeare_data_dir))
    starts = [json.loads(o.splitlines()[0])["resume_from_epoch"] for o in outputs]
    assert starts == [resumed_from, resumed_from]
    digests = [re.search(r'"weights_sha256": "([0-9a-f]{64})"', o).group(1) for o in outputs]
    chief = load_model_dir(out)
    assert digests[0] == digests[1] == chief.metadata["weights_sha256"]
    assert chief.metadata["strategy"] == "multiworker" and (out / "history.json").is_file()
    assert chief.metadata["epochs_run"] == 3 and chief.metadata["resumes"] == 1
    assert not (out / ".resume").exists()
    scratch = Path(json.loads(outputs[1].splitlines()[0])["out"])
    assert scratch != out and not scratch.exists()  # the other worker's scratch folder is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_mirrored_strategy_trains_with_fit(shakespeare_data_dir, tmp_path):
    from textgen import train
    from textgen.config import CharLMConfig, RNNConfig

    cfg = train.TrainConfig(epochs=1, steps_per_epoch=3, validation_steps=1, batch_size=8, seq_len=16, seed=2,
                            deterministic=False, strategy="mirrored")
    result = train.train("charlm", "tiny_shakespeare", tmp_path / "m", CharLMConfig(rnn=RNNConfig(cell="gru", units=8),
                         embedding_dim=4), cfg, data_dir=shakespeare_data_dir, verbose=0, print_fn=lambda s: None)
    meta = load_model_dir(tmp_path / "m").metadata
    assert meta["strategy"] == "mirrored" and meta["num_replicas"] >= 1
    assert meta["weights_sha256"] == result.weights_sha256


def test_multiworker_needs_a_seed_and_a_character_model(tmp_path, capsys):
    from textgen import cli

    assert cli.main(["train", "charlm", "--strategy", "multiworker", "--out", str(tmp_path / "x")]) == 2
    assert "needs --seed" in capsys.readouterr().err
    assert cli.main(["train", "sentiment", "--strategy", "multiworker", "--seed", "1", "--out", str(tmp_path / "y")]) == 2
    assert "trains character models or word language models only" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
