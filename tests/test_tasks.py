"""The task registry (textgen.tasks): the shared machinery asks the task and never names one.

The proof is a third task written here, in the test, in a few lines: it is registered, then trained,
resumed, evaluated, carded and exported through the public `textgen` commands, with no shared
module edited for it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import artifacts, cli, tasks
from textgen import config as config_lib
from textgen.config import ConfigError, RNNConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]
VOWELS = "aeiouAEIOU"


# ---- the toy task: does the character after a window of text start... a vowel?


@config_lib.register_config
@dataclasses.dataclass(frozen=True)
class VowelConfig:
    """Characters -> Embedding -> RNN stack -> P(the next character is a vowel)."""

    rnn: RNNConfig = RNNConfig(cell="gru", units=8)  # the recurrent stack
    embedding_dim: int = 4  # size of each character embedding


class VowelTask(tasks.Task):
    name, config_class, help = "vowel", VowelConfig, "next-character-is-a-vowel classifier"
    default_dataset, token, models = "tiny_shakespeare", "character", "vowel models"

    def data(self, dataset, model_cfg, cfg, data_dir, manual_dir, seed):
        from textgen import data

        text = data.read_text(dataset, "train", data_dir=data_dir, manual_dir=manual_dir)[:20_000]
        vocabulary = sorted(set(text))
        windows = lambda t: self._windows(t, cfg.seq_len)  # noqa: E731
        val = data.read_text(dataset, "validation", data_dir=data_dir, manual_dir=manual_dir)[:4_000]
        train_ds, val_ds = windows(text), windows(val)
        return tasks.TaskData(
            vocabulary=vocabulary,
            train_fn=lambda b, repeat: (train_ds.shuffle(1000, seed=seed).repeat() if repeat else train_ds).batch(b),
            val_fn=lambda b: val_ds.batch(b), steps_per_epoch=len(text) // (cfg.seq_len + 1) // cfg.batch_size,
            splits={"train": "train (first 20,000 characters)", "validation": "validation", "test": "test"},
            extra_metadata={"vowel_share": sum(c in VOWELS for c in text) / len(text)})

    @staticmethod
    def _windows(text, seq_len):
        span = seq_len + 1
        pieces = [text[i:i + span] for i in range(0, len(text) - span, span)]
        x = tf.constant([list(p[:-1]) for p in pieces])  # (windows, seq_len) characters
        y = tf.constant([[float(p[-1] in VOWELS)] for p in pieces])  # (windows, 1)
        return tf.data.Dataset.from_tensor_slices((x, y))

    def build(self, model_cfg, vocabulary):
        from textgen.models import make_rnn

        chars = keras.Input(shape=(None,), dtype="string", name="chars")  # (batch, time)
        ids = keras.layers.StringLookup(vocabulary=list(vocabulary), name="char_to_id")(chars)
        x = keras.layers.Embedding(len(vocabulary) + 1, model_cfg.embedding_dim, name="embedding")(ids)
        x = make_rnn(model_cfg.rnn.cell, model_cfg.rnn.units, return_sequences=False, name="rnn_0")(x)  # (batch, units)
        return keras.Model(chars, keras.layers.Dense(1, activation="sigmoid", name="vowel")(x))

    def compile(self, model, cfg, optimizer):
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])

    def evaluate(self, model, dataset, split, *, metadata, data_dir=None, manual_dir=None, limit=0, **flags):
        from textgen import data

        text = data.read_text(dataset, split, data_dir=data_dir, manual_dir=manual_dir)[: limit or 4_000]
        x, y = next(iter(self._windows(text, 100).batch(10_000)))
        accuracy = float(np.mean((model.predict(x, verbose=0) > 0.5) == y.numpy()))
        return {"dataset": dataset, "split": split, "accuracy": accuracy,
                "baseline_majority": max(metadata["vowel_share"], 1 - metadata["vowel_share"])}

    def export(self, model, out, fmt, batch_size):
        model.export(str(out), verbose=False)  # a SavedModel with `serve`


@pytest.fixture
def vowel_task():
    task = tasks.register(VowelTask())
    yield task
    tasks.unregister(task.name)


def test_registry_finds_tasks_by_name_and_by_config():
    assert tasks.names()[:2] == ("charlm", "sentiment")
    assert tasks.get("charlm").config_class is config_lib.CharLMConfig
    assert tasks.for_config(config_lib.SentimentConfig()).name == "sentiment"
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        tasks.get("nope")
    with pytest.raises(TypeError, match="got RNNConfig"):
        tasks.for_config(RNNConfig())
    with pytest.raises(ValueError, match="already registered"):
        tasks.register(type(tasks.get("charlm"))())


def test_a_task_refuses_what_it_cannot_train():
    charlm, sentiment = tasks.get("charlm"), tasks.get("sentiment")
    with pytest.raises(ConfigError, match="multiworker trains character models or word language models only"):
        sentiment.check(TrainConfig(strategy="multiworker"))
    with pytest.raises(ConfigError, match="val_accuracy is for sentiment models; character models monitor val_loss"):
        charlm.check(TrainConfig(monitor="val_accuracy"))
    with pytest.raises(ConfigError, match="--init-from .* starts sentiment models only"):
        charlm.check(TrainConfig(init_from="x"))
    with pytest.raises(ConfigError, match="sample_chars .* is for character models"):
        sentiment.check(TrainConfig(sample_chars=10))
    charlm.check(TrainConfig(strategy="multiworker", sample_chars=10))
    sentiment.check(TrainConfig(monitor="val_accuracy", init_from="x"))


def test_the_shared_code_names_no_task():
    """Outside textgen/tasks/, no module compares a task's name (the CLI's lists come from the registry)."""
    shared = [p for p in (REPO / "textgen").rglob("*.py") if "tasks" not in p.relative_to(REPO / "textgen").parts]
    branches = [f"{p.name}:{i + 1}: {line.strip()}" for p in shared
                for i, line in enumerate(p.read_text(encoding="utf-8").splitlines())
                if any(f'task {op} "' in line or f'task{op}"' in line for op in ("==", "!=", "in"))
                or "isinstance(config, CharLMConfig)" in line or "isinstance(config, SentimentConfig)" in line]
    assert not branches, branches


@pytest.mark.slow
def test_a_toy_task_trains_evaluates_cards_and_exports_through_the_commands(vowel_task, shakespeare_data_dir,
                                                                            tmp_path, capsys):
    out = tmp_path / "vowel"
    argv = ["train", "vowel", "--dataset", "tiny_shakespeare", "--data-dir", str(shakespeare_data_dir),
            "--out", str(out), "--epochs", "2", "--steps-per-epoch", "4", "--batch-size", "16", "--seed", "3",
            "--units", "6", "--quiet"]
    assert cli.main(argv) == 0
    md = artifacts.load_model_dir(out)
    assert md.task == "vowel" and isinstance(md.config, VowelConfig) and md.config.rnn.units == 6
    assert md.metadata["epochs_run"] == 2 and 0.5 <= md.metadata["metrics"]["accuracy"] <= 1.0
    assert json.loads((out / "train_config.json").read_text())["config"]["seed"] == 3

    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--data-dir", str(shakespeare_data_dir), "--split", "validation", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "vowel" and result["split"] == "validation" and 0 <= result["accuracy"] <= 1

    command = "textgen " + " ".join(argv)
    assert cli.main(["card", str(out), "--command", command]) == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("# vowel") and "next-character-is-a-vowel classifier: 1-layer gru (6 units)" in card
    assert "| parameters |" in card and "## Samples" not in card
    assert cli.main(["card", str(out), "--check"]) == 0, capsys.readouterr()

    assert cli.main(["export", str(out), "--out", str(tmp_path / "exported")]) == 0
    assert cli.main(["export", str(out), "--out", str(tmp_path / "lite"), "--format", "tflite"]) == 2
    assert "--format tflite exports character models; export vowel models as savedmodel" in capsys.readouterr().err
    probe = ("import sys, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
             "print(float(m.serve(tf.constant([list('To be, or not to b')]))[0, 0]))")
    p = float(subprocess.run([sys.executable, "-c", probe, str(tmp_path / "exported")], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1])
    expected = float(md.model(tf.constant([list("To be, or not to b")]))[0, 0])
    assert abs(p - expected) < 1e-5
