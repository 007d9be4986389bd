"""Training on the real tiny_shakespeare: run directory, strict configs, overwrite guard, NaN stop,
seeds, and resume after a real `kill -9`."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from textgen import cli, train, train_flags
from textgen.artifacts import load_model_dir
from textgen import config as config_lib
from textgen.config import CharLMConfig, ConfigError, RNNConfig, load_config

TINY_MODEL = CharLMConfig(rnn=RNNConfig(cell="gru", units=48), embedding_dim=16)
# deterministic=False in-process: op determinism is process-wide and would outlive this test.
TINY_TRAIN = train.TrainConfig(epochs=2, steps_per_epoch=30, validation_steps=4, batch_size=32, seq_len=64,
                               learning_rate=0.01, seed=1, deterministic=False)
QUIET = dict(verbose=0, print_fn=lambda s: None)


@pytest.fixture(scope="module")
def finished_run(shakespeare_data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "charlm"
    train.train("charlm", "tiny_shakespeare", out, TINY_MODEL, TINY_TRAIN, data_dir=shakespeare_data_dir, **QUIET)
    return out


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}


def test_run_directory_has_every_file(finished_run):
    names = {p.name for p in finished_run.iterdir()}
    assert {"model.keras", "config.json", "metadata.json", "train_config.json", "history.json",
            "training_curve.png", "logs"} <= names
    assert not (finished_run / train.STATE_DIR).exists()  # resume state is gone once finished
    md = load_model_dir(finished_run)
    assert md.config == TINY_MODEL
    assert load_config(finished_run / "train_config.json") == TINY_TRAIN
    history = json.loads((finished_run / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == 2
    assert history["loss"][1] < history["loss"][0]
    assert (finished_run / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((finished_run / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((finished_run / "logs" / "validation").glob("events.out.tfevents.*"))
    meta = md.metadata
    assert meta["dataset"]["name"] == "tiny_shakespeare" and meta["dataset"]["version"]
    assert meta["seed"] == 1 and meta["epochs_run"] == 2 and meta["training_time_s"] > 0
    assert meta["versions"]["keras"] and "git_commit" in meta
    assert meta["metrics"]["split"] == "test" and meta["metrics"]["characters"] > 50000


def test_trained_model_beats_the_unigram_baseline(finished_run):
    metrics = load_model_dir(finished_run).metadata["metrics"]
    assert np.isfinite(metrics["loss_nats"])
    assert metrics["bits_per_char"] == pytest.approx(metrics["loss_nats"] / np.log(2))
    assert metrics["loss_nats"] < metrics["baseline_unigram"]["loss_nats"] - 0.3


def test_finished_run_is_not_overwritten_by_accident(finished_run, shakespeare_data_dir, capsys):
    before = _snapshot(finished_run)
    code = cli.main(["train", "charlm", "--data-dir", str(shakespeare_data_dir), "--out", str(finished_run),
                     "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "holds a finished run" in err and "--overwrite" in err
    assert _snapshot(finished_run) == before


@pytest.mark.parametrize("override, message", [
    ("rnn.unitz=8", "unknown config key"),
    ("units=many", "must be an integer"),
    ("train.learning_rate=fast", "must be a number"),
    ("schedule=linear", "schedule must be one of"),
    ("noequals", "key=value"),
])
def test_strict_overrides_exit_2(override, message, tmp_path, capsys):
    code = cli.main(["train", "charlm", "--out", str(tmp_path / "x"), "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_overrides_route_to_model_and_train_configs():
    model, cfg = train_flags.resolve_configs("charlm", {"rnn.cell": "gru"}, {"epochs": 3},
                                       ["units=32", "train.seq_len=50", "batch_size=8", "model.embedding_dim=4"])
    assert (model.rnn.cell, model.rnn.units, model.embedding_dim) == ("gru", 32, 4)
    assert (cfg.epochs, cfg.seq_len, cfg.batch_size) == (3, 50, 8)


def test_nan_loss_stops_and_leaves_the_finished_run_alone(finished_run, shakespeare_data_dir, tmp_path):
    before = _snapshot(finished_run)
    # Adam moves every weight by ~lr per step whatever the gradient: with 1e38 the next step's
    # matmuls overflow float32 (inf - inf = NaN).
    wild = dataclasses.replace(TINY_TRAIN, learning_rate=1e38, clipnorm=0.0, schedule="constant")
    with pytest.raises(train.DivergedError, match="loss became"):
        train.train("charlm", "tiny_shakespeare", finished_run, TINY_MODEL, wild,
                    data_dir=shakespeare_data_dir, overwrite=True, **QUIET)
    assert _snapshot(finished_run) == before
    assert not (finished_run / train.STATE_DIR).exists()
    fresh = tmp_path / "fresh"
    with pytest.raises(train.DivergedError):
        train.train("charlm", "tiny_shakespeare", fresh, TINY_MODEL, wild, data_dir=shakespeare_data_dir, **QUIET)
    assert not fresh.exists()


@pytest.mark.slow
def test_same_seed_same_first_epoch_loss(shakespeare_data_dir, tmp_path):
    cfg = dataclasses.replace(TINY_TRAIN, epochs=1, steps_per_epoch=5, validation_steps=1)
    runs = [train.train("charlm", "tiny_shakespeare", tmp_path / name, TINY_MODEL,
                        dataclasses.replace(cfg, seed=seed), data_dir=shakespeare_data_dir, **QUIET)
            for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    assert runs[0].history["loss"][0] == runs[1].history["loss"][0]
    assert runs[0].weights_sha256 == runs[1].weights_sha256
    assert runs[0].history["loss"][0] != runs[2].history["loss"][0]


def _train_cmd(data_dir: Path, out: Path, seed: bool = True, quiet: bool = True) -> list[str]:
    return [sys.executable, "-m", "textgen", "train", "charlm", "--data-dir", str(data_dir), "--out", str(out),
            "--cell", "gru", "--units", "32", "--embedding-dim", "8", "--epochs", "4",
            "--steps-per-epoch", "40", "--validation-steps", "2", "--batch-size", "16", "--seq-len", "32",
            ] + (["--quiet"] if quiet else []) + (["--seed", "3"] if seed else [])


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(shakespeare_data_dir, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(_train_cmd(shakespeare_data_dir, out), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    state = out / train.STATE_DIR / "state.json"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.is_file() and json.loads(state.read_text())["epoch"] >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"training ended before it could be killed:\n{proc.stdout.read()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 2 <= killed_at < 4 and not (out / "model.keras").exists()

    # A different config must not resume into this run.
    other = CharLMConfig(rnn=RNNConfig(cell="gru", units=16), embedding_dim=8)
    with pytest.raises(train.RunDirError, match="different model config"):
        train.train("charlm", "tiny_shakespeare", out, other,
                    train.TrainConfig(epochs=4, steps_per_epoch=40, validation_steps=2, batch_size=16, seq_len=32,
                                      seed=3), data_dir=shakespeare_data_dir, **QUIET)

    # The same command (here without --seed: the run's recorded seed is taken over) resumes it.
    done = subprocess.run(_train_cmd(shakespeare_data_dir, out, seed=False, quiet=False), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming {out} after epoch {killed_at} of 4" in done.stdout
    # Output to a pipe or log: one line per epoch, no redrawn progress bar.
    assert "Epoch 4/4" in done.stdout and "━" not in done.stdout and "\x1b[" not in done.stdout
    epoch_lines = [line for line in done.stdout.splitlines() if line.startswith("40/40 - ") and "val_loss:" in line]
    assert len(epoch_lines) == 4 - killed_at
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 4  # nothing lost, nothing run twice
    meta = load_model_dir(out).metadata
    assert meta["resumes"] == 1 and meta["epochs_run"] == 4 and meta["seed"] == 3
    assert not (out / train.STATE_DIR).exists()


def test_monitor_picks_the_epoch_and_drives_early_stopping():
    """val_loss keeps the lowest loss; val_accuracy (sentiment) the highest accuracy, also under the
    two-head name Keras logs; what picked the epoch goes to metadata.json."""
    import keras

    epochs = [{"loss": 0.41, "val_loss": 0.243, "val_accuracy": 0.8988},
              {"loss": 0.09, "val_loss": 0.256, "val_accuracy": 0.9036}]
    picked = {}
    for monitor, key in (("val_loss", "val_accuracy"), ("val_accuracy", "val_accuracy"),
                         ("val_accuracy", "val_polarity_accuracy")):
        cb = train.RunState(None, patience=1, monitor=monitor)
        cb.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        for i, logs in enumerate(epochs):
            cb.on_epoch_end(i, {("val_polarity_accuracy" if k == "val_accuracy" else k): v for k, v in logs.items()}
                            if key == "val_polarity_accuracy" else logs)
        picked[(monitor, key)] = (cb.best_epoch, cb.stopped_early, cb.validation_summary())
    assert picked[("val_loss", "val_accuracy")] == (1, True, {"best_epoch": 1, "monitor": "val_loss", "best_loss": 0.243})
    for key in ("val_accuracy", "val_polarity_accuracy"):
        assert picked[("val_accuracy", key)] == (2, False, {"best_epoch": 2, "monitor": "val_accuracy",
                                                            "best_loss": 0.256, "best_accuracy": 0.9036})
    cb = train.RunState(None, patience=0, monitor="val_accuracy")
    cb.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    with pytest.raises(ConfigError, match="no validation accuracy"):
        cb.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    with pytest.raises(ConfigError, match="for sentiment models"):
        train.train("charlm", "tiny_shakespeare", "unused", TINY_MODEL,
                    dataclasses.replace(TINY_TRAIN, monitor="val_accuracy"), **QUIET)


def test_a_run_started_before_a_config_field_existed_still_resumes():
    saved = {"task": "charlm", "dataset": "d", "vocabulary": ["a"],
             "model_config": {"kind": "CharLMConfig", "config": {"embedding_dim": 8}},
             "train_config": {"kind": "TrainConfig", "config": {"epochs": 4, "seed": 3}}}  # no monitor, init_from...
    run = {"task": "charlm", "dataset": "d", "vocabulary": ["a"],
           "model_config": {"kind": "CharLMConfig", "config": config_lib.to_dict(CharLMConfig(embedding_dim=8))},
           "train_config": {"kind": "TrainConfig", "config": config_lib.to_dict(train.TrainConfig(epochs=4, seed=3))}}
    assert train._run_mismatch(saved, run) is None
    run["train_config"]["config"]["epochs"] = 5
    assert "epochs: 4 then, 5 now" in train._run_mismatch(saved, run)
