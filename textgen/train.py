"""Training: `model.fit` (or the multi-worker loop) + atomic checkpoints + resume; writes a run directory.

A run directory `DIR` ends up holding:

    model.keras, config.json, metadata.json   the model directory (textgen.artifacts)
    train_config.json                         the TrainConfig (`textgen.config.load_config` reads it)
    history.json, training_curve.png          loss / val_loss per epoch
    logs/                                     TensorBoard event files (train/, validation/)

While a run is unfinished, `DIR/.resume/` holds `run.json` (task, dataset, both configs,
vocabulary), `state.json` (the commit point: last completed epoch, history, early-stopping state)
and the weights (+ optimizer state) of that epoch. Every file is written under a temporary name and
renamed, and `state.json` is written last, so a `kill -9` at any moment leaves either the previous
or the new epoch, never a mix. Keras's own `BackupAndRestore` writes its weights and its epoch
number as two non-atomic files, which a kill between them desynchronises; hence this callback.
The final files are written only after training succeeds, so a diverged or killed run never
touches the model a finished run left in `DIR`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import platform
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from textgen import artifacts, distributed, folders
from textgen import config as config_lib
from textgen.config import PRECISIONS, SCHEDULES, CharLMConfig, ConfigError, SentimentConfig, TrainConfig  # noqa: F401
from textgen.errors import TextgenError

STATE_DIR = ".resume"
TRAIN_CONFIG_FILE = "train_config.json"
HISTORY_FILE = "history.json"
CURVE_FILE = "training_curve.png"
LOGS_DIR = "logs"
PROGRESS_FILE = "progress.jsonl"  # one JSON line per epoch (and about one a second within an epoch);
# in DIR/.resume/ while the run is unfinished, beside the model when it is done
STOP_FILE = "stop"  # in .resume/: ask a running run to stop and keep its best weights
# Everything a run writes at the top of its directory (textgen.folders: what --overwrite may replace).
RUN_ENTRIES = (*artifacts.MODEL_DIR_ENTRIES, TRAIN_CONFIG_FILE, HISTORY_FILE, CURVE_FILE, LOGS_DIR, STATE_DIR,
               PROGRESS_FILE)


class RunDirError(TextgenError):
    """The output directory holds a finished run, another run, or files that are not a run."""


class DivergedError(TextgenError):
    """The loss became NaN or infinite; training stopped and nothing final was written."""


MODEL_CONFIGS = {"charlm": CharLMConfig, "sentiment": SentimentConfig}


def resolve_configs(task: str, model_values: dict, train_values: dict, overrides: list[str]) -> tuple[Any, TrainConfig]:
    """Builds (model config, TrainConfig) from CLI flag values and `--set key=value` overrides.

    A `--set` key starting with `train.` or naming a TrainConfig field goes to the TrainConfig;
    `model.` or anything else goes to the model config. Unknown keys and wrong types raise
    ConfigError. Flag values of None mean "the config's default".
    """
    model_cfg = config_lib.apply_overrides(MODEL_CONFIGS[task](), {k: v for k, v in model_values.items() if v is not None})
    train_cfg = config_lib.apply_overrides(TrainConfig(), {k: v for k, v in train_values.items() if v is not None})
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model_over, train_over = {}, {}
    for text in overrides:
        key, value = config_lib.parse_override(text)
        if key.startswith("train."):
            train_over[key[len("train."):]] = value
        elif key.startswith("model."):
            model_over[key[len("model."):]] = value
        elif key.split(".")[0] in train_fields:
            train_over[key] = value
        else:
            model_over[key] = value
    return config_lib.apply_overrides(model_cfg, model_over), config_lib.apply_overrides(train_cfg, train_over)


# --------------------------------------------------------------------------------------------
# The run directory: finished / unfinished / fresh, and the resume check.


@dataclasses.dataclass
class RunDir:
    """Paths of one run directory and what is already in it."""

    path: Path

    @property
    def state_dir(self) -> Path:
        return self.path / STATE_DIR

    @property
    def finished(self) -> bool:
        return (self.path / artifacts.MODEL_FILE).is_file() and not self.state_dir.is_dir()

    @property
    def unfinished(self) -> bool:
        return (self.state_dir / "run.json").is_file()

    def read_state(self) -> dict | None:
        path = self.state_dir / "state.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_run_out(out_dir, inputs, overwrite: bool) -> None:
    """The checks on a run directory that need no data: it overlaps no input (a transfer source,
    the data folders, the user's text files), is not a folder textgen did not write, and holds no
    finished run unless `overwrite`."""
    folders.check_out_path(out_dir, inputs)
    _refuse_foreign(Path(out_dir))
    if RunDir(Path(out_dir)).finished and not overwrite:
        raise RunDirError(f"{out_dir} holds a finished run; pass --overwrite to replace it "
                          "(it stays until the new run ends)")


def _refuse_foreign(out: Path) -> None:
    """RunDirError unless `out` is absent, empty, an unfinished run or a folder textgen wrote."""
    if RunDir(out).unfinished:  # also a run started before runs had the marker: it resumes
        return
    if out.is_dir() and any(out.iterdir()) and folders.foreign_entries(out, RUN_ENTRIES) is None:
        raise RunDirError(f"--out {out} is a non-empty folder that textgen did not write (no {folders.MARKER}); "
                          "--overwrite replaces only textgen's own runs: choose another or empty it yourself")


def prepare_run_dir(out: Path, run: dict, overwrite: bool) -> tuple[RunDir, dict | None, dict]:
    """Checks `out` and returns (run dir, saved state to resume or None, the run description).

    Raises:
        RunDirError: `out` holds a finished run and `overwrite` is False; holds an unfinished run
            with another config or vocabulary (and `overwrite` is False); or holds files of a
            folder textgen did not write (refused even with `overwrite`: never a user's folder).
    """
    rd = RunDir(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a directory")
    _refuse_foreign(out)
    if rd.unfinished:
        saved = json.loads((rd.state_dir / "run.json").read_text(encoding="utf-8"))
        problem = _run_mismatch(saved, run)
        if problem is None:
            return rd, rd.read_state(), saved
        if not overwrite:
            raise RunDirError(
                f"{out} holds an unfinished run with a different {problem}; resuming would mix two runs. "
                "Run the same command as before to resume it, pass --overwrite to discard it, or choose another --out"
            )
        shutil.rmtree(rd.state_dir)
    elif rd.finished and not overwrite:
        raise RunDirError(f"{out} holds a finished run; pass --overwrite to replace it (it stays until the new run ends)")
    elif rd.state_dir.exists():  # a run killed before run.json was written
        shutil.rmtree(rd.state_dir)
    folders.make_folder(rd.state_dir)
    if folders.read_marker(out) is None:
        folders.write_marker(out, "run", RUN_ENTRIES)
    artifacts.write_json(rd.state_dir / "run.json", run)
    return rd, None, run


def _saved_seed(out: Path) -> int | None:
    """The seed recorded by an unfinished run in `out`, if any."""
    try:
        saved = json.loads((out / STATE_DIR / "run.json").read_text(encoding="utf-8"))
        return saved["train_config"]["config"].get("seed")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _with_defaults(entry: dict) -> dict:
    """A {"kind", "config"} entry of run.json with the fields a newer textgen added filled in with
    their defaults, so a run started before a field existed still resumes."""
    try:
        cls = config_lib.CONFIG_KINDS[entry["kind"]]
        return {"kind": entry["kind"], "config": config_lib.to_dict(config_lib.from_dict(cls, entry["config"]))}
    except (KeyError, TypeError, ConfigError):
        return entry


def _run_mismatch(saved: dict, run: dict) -> str | None:
    saved = {**saved, **{k: _with_defaults(saved[k]) for k in ("model_config", "train_config") if k in saved}}
    for key, what in (("task", "task"), ("dataset", "dataset"), ("model_config", "model config"),
                      ("train_config", "training config"), ("vocabulary", "vocabulary")):
        if saved.get(key) != run.get(key):
            if key in ("model_config", "train_config"):
                a, b = saved[key]["config"], run[key]["config"]
                diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                return f"{what} ({', '.join(f'{k}: {a.get(k)!r} then, {b.get(k)!r} now' for k in diff)})"
            return what
    return None


# --------------------------------------------------------------------------------------------
# The callback that keeps history, early stopping, NaN stop and atomic per-epoch checkpoints.


class RunState(keras.callbacks.Callback):
    """Per-epoch history + early stopping (best weights kept) + NaN stop + atomic checkpoints.

    Args:
        state_dir: where the checkpoint lives (None: keep everything in memory, e.g. non-chief).
        patience: epochs without a better `val_loss` before stopping; 0 = never stop early.
        state: a saved `state.json` to continue from, or None.
    """

    def __init__(self, state_dir: Path | None, patience: int, state: dict | None = None, monitor: str = "val_loss"):
        super().__init__()
        self.state_dir = state_dir
        self.patience = patience
        self.monitor = monitor
        state = state or {}
        self.epoch = state.get("epoch", 0)
        self.history: list[dict] = state.get("history", [])
        self.best = state.get("best", math.inf)
        self.best_epoch = state.get("best_epoch", 0)
        self.wait = state.get("wait", 0)
        self.stopped_early = state.get("stopped_early", False)
        self.elapsed = state.get("elapsed_s", 0.0)
        self.resumes = state.get("resumes", -1) + 1 if state else 0
        self.diverged: tuple[int, int, float] | None = None
        self.best_weights: list | None = None  # in memory when there is no state_dir
        self.stop_requested = False
        self._epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = (self.epoch + 1, batch + 1, float(loss))
            self.model.stop_training = True
        if self.state_dir is not None and (self.state_dir / STOP_FILE).exists():
            # A stop request (the app's Stop button, or `touch DIR/.resume/stop`): Keras validates the
            # epoch so far and ends it; the run then finishes with the best weights so far.
            self.stop_requested = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged is not None:
            return
        logs = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        if not all(math.isfinite(v) for v in logs.values()):
            self.diverged = (epoch + 1, 0, next(v for v in logs.values() if not math.isfinite(v)))
            self.model.stop_training = True
            return
        self.epoch = epoch + 1
        self.elapsed += time.perf_counter() - self._epoch_start
        self.history.append(logs)
        score = self.score(logs)
        improved = score < self.best
        if improved:
            self.best, self.best_epoch, self.wait = score, self.epoch, 0
            self._save_weights("best.weights.h5")
        else:
            self.wait += 1
            if self.patience and self.wait >= self.patience:
                self.stopped_early = True
                self.model.stop_training = True
        if self.stop_requested:
            self.stopped_early = True  # a resumed run must not continue a run the user stopped
        weights = f"epoch-{self.epoch}.weights.h5"
        self._save_weights(weights)
        if self.state_dir is not None:
            artifacts.write_json(self.state_dir / "state.json", self.state_dict(weights))  # the commit point
            for old in self.state_dir.glob("epoch-*.weights.h5"):
                if old.name != weights:
                    old.unlink(missing_ok=True)

    def score(self, logs: dict) -> float:
        """The monitored value of an epoch as a score where lower is better (-accuracy for accuracy)."""
        if self.monitor == "val_accuracy":
            # One head logs "val_accuracy"; with a valence head beside it Keras logs "val_polarity_accuracy".
            value = logs.get("val_accuracy", logs.get("val_polarity_accuracy"))
            if value is None:
                raise ConfigError(f"monitor val_accuracy: no validation accuracy in the logs ({', '.join(sorted(logs))})")
            return -value
        return logs.get("val_loss", logs.get("loss"))

    def validation_summary(self) -> dict:
        """metadata.json's "validation": the chosen epoch, what chose it, its loss (and accuracy)."""
        chosen = self.history[self.best_epoch - 1] if 0 < self.best_epoch <= len(self.history) else {}
        out = {"best_epoch": self.best_epoch, "monitor": self.monitor,
               "best_loss": chosen.get("val_loss", self.best if self.monitor == "val_loss" else None)}
        if self.monitor == "val_accuracy":
            out["best_accuracy"] = -self.best
        return out

    def state_dict(self, weights: str) -> dict:
        return {
            "epoch": self.epoch, "history": self.history, "best": self.best, "best_epoch": self.best_epoch,
            "wait": self.wait, "stopped_early": self.stopped_early, "weights": weights,
            "elapsed_s": self.elapsed, "resumes": self.resumes,
        }

    def _save_weights(self, name: str) -> None:
        if self.state_dir is None:
            if name.startswith("best"):
                self.best_weights = self.model.get_weights()
            return
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".weights.h5", dir=self.state_dir)
        os.close(fd)
        os.unlink(tmp)  # h5py refuses to open an existing empty file in some modes
        try:
            self.model.save_weights(tmp)
            os.replace(tmp, self.state_dir / name)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def restore(self, model: keras.Model, state: dict) -> None:
        """Loads the weights (and optimizer state) of the last completed epoch."""
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.state_dir / state["weights"])

    def restore_best(self, model: keras.Model) -> None:
        """Sets the weights of the epoch with the best validation loss."""
        if self.state_dir is None:
            if self.best_weights is not None:
                model.set_weights(self.best_weights)
        elif (self.state_dir / "best.weights.h5").is_file():
            model.load_weights(self.state_dir / "best.weights.h5")


class Progress(keras.callbacks.Callback):
    """Appends live progress to `DIR/.resume/progress.jsonl` (moved to `DIR/progress.jsonl` when the run
    is done), which the app's Train page (or `tail -f`) reads.

    Lines: {"event": "batch", "epoch", "step", "steps", "loss"} at most about once a second, and
    {"event": "epoch", "epoch", "epochs", "loss", "val_loss", "sample"?} after each epoch, where
    `sample` is text generated from the weights of that epoch when `sample_fn` is given.
    """

    def __init__(self, path: Path, steps: int, epochs: int, sample_fn: Callable[[keras.Model, int], str] | None):
        super().__init__()
        self.path, self.steps, self.epochs, self.sample_fn = path, steps, epochs, sample_fn
        self._last = 0.0
        self._epoch = 0

    def _write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            loss = (logs or {}).get("loss")
            self._write({"event": "batch", "epoch": self._epoch, "step": batch + 1, "steps": self.steps,
                         "loss": float(loss) if loss is not None else None})

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        record = {"event": "epoch", "epoch": epoch + 1, "epochs": self.epochs,
                  **{k: float(logs[k]) for k in ("loss", "val_loss") if k in logs}}
        if self.sample_fn is not None:
            record["sample"] = self.sample_fn(self.model, epoch + 1)
        self._write(record)


class ScalarLogs(keras.callbacks.Callback):
    """Per-epoch TensorBoard scalars in Keras's layout (`train/`, `validation/`, tags `epoch_*`).

    `keras.callbacks.TensorBoard` needs the `tensorboard` package for `tf.summary.scalar`; this
    writes the same events with TF's core `tf.summary.write` and the scalars plugin metadata, so
    logs are written without that package (`pip install tensorboard` only to view them).
    """

    def __init__(self, log_dir: Path):
        super().__init__()
        from tensorflow.core.framework import summary_pb2

        self.log_dir = Path(log_dir)
        self._metadata = summary_pb2.SummaryMetadata()
        self._metadata.plugin_data.plugin_name = "scalars"
        self._writers: dict[str, Any] = {}

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if np.ndim(value) != 0:
                continue
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(split).as_default():
                tf.summary.write(f"epoch_{tag}", tf.constant(float(value)), step=epoch, metadata=self._metadata)
        lr = getattr(self.model.optimizer, "learning_rate", None)
        if lr is not None:
            with self._writer("train").as_default():
                tf.summary.write("epoch_learning_rate", tf.cast(lr, tf.float32), step=epoch, metadata=self._metadata)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()


# --------------------------------------------------------------------------------------------
# Pieces of a run: seeds, optimizer, data, model.


def set_seed(seed: int, deterministic: bool) -> None:
    """Seeds Python, NumPy and TF; optionally makes TF ops deterministic (process-wide)."""
    keras.utils.set_random_seed(seed)
    random.seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_optimizer(cfg: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """Adam with the configured schedule over `total_steps` and gradient clipping."""
    lr: Any = cfg.learning_rate
    total_steps = max(1, total_steps)
    if cfg.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=total_steps, alpha=0.1)
    elif cfg.schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(cfg.learning_rate, max(1, total_steps // 4), 0.5)
    return keras.optimizers.Adam(learning_rate=lr, clipnorm=cfg.clipnorm or None)


@dataclasses.dataclass
class TaskData:
    """What a task hands to the training loop."""

    vocabulary: list[str]  # characters (charlm) or words from TextVectorization (sentiment)
    train_fn: Callable[[int, bool], tf.data.Dataset]  # (batch size, repeat) -> batches
    val_fn: Callable[[int], tf.data.Dataset] | None  # batch size -> batches (not repeated)
    steps_per_epoch: int  # batches in one full pass over the training data
    splits: dict  # split name -> how it was used
    extra_metadata: dict
    init_weights: dict | None = None  # layer name -> weights that start the run (--init-from)


def _charlm_data(dataset: str, cfg: TrainConfig, data_dir, manual_dir, seed: int) -> TaskData:
    """Character windows streamed from the TFDS split's pieces (a 200 MB corpus is never one string).

    One pass over the training pieces counts characters (vocabulary, unigram baseline, windows) and
    one over the validation pieces counts its windows; training then streams the pieces again.
    """
    from textgen import data
    from textgen.vocab import select_vocabulary

    span = cfg.seq_len + 1

    def pieces(split: str) -> tf.data.Dataset:
        return data.load_text_corpus(dataset, split, data_dir=data_dir, manual_dir=manual_dir)

    counts: collections.Counter = collections.Counter()
    train_chars = windows = 0
    kept: list[str] = []  # the pieces themselves, only under --set train_limit (a small prefix)
    for raw in pieces("train").as_numpy_iterator():
        piece = raw.decode("utf-8")
        if cfg.train_limit:
            piece = piece[: cfg.train_limit - train_chars]
            kept.append(piece)
        counts.update(piece)
        train_chars += len(piece)
        windows += len(piece) // span  # piece_windows drops each piece's last partial window
        if cfg.train_limit and train_chars >= cfg.train_limit:
            break
    val_chars = val_windows = 0
    for raw in pieces("validation").as_numpy_iterator():
        n = len(raw.decode("utf-8"))
        val_chars += n
        val_windows += n // span
    if windows < cfg.batch_size or val_windows < 1:
        raise TextgenError(
            f"the training split has {train_chars:,} characters and the validation split {val_chars:,}: one batch "
            f"needs {cfg.batch_size * span:,} training characters ({cfg.batch_size} windows of --seq-len "
            f"{cfg.seq_len} + 1) and validation at least {span}; lower --batch-size or --seq-len or give more text")
    vocabulary = select_vocabulary(counts, cfg.max_vocab, cfg.min_count)
    if not vocabulary:
        raise TextgenError(f"no character of the training split is seen --min-count {cfg.min_count} times")
    train_pieces = (lambda: tf.data.Dataset.from_tensor_slices(tf.constant(kept, tf.string))) if cfg.train_limit \
        else (lambda: pieces("train"))

    def train_fn(batch_size: int, repeat: bool) -> tf.data.Dataset:
        ds = data.piece_windows(train_pieces(), vocabulary, cfg.seq_len, batch_size, shuffle=True, seed=seed,
                                drop_remainder=True, repeat=repeat)
        # flat_map hides the length; Keras needs it to end an epoch without a warning
        return ds if repeat else ds.apply(tf.data.experimental.assert_cardinality(windows // batch_size))

    def val_fn(batch_size: int) -> tf.data.Dataset:
        # A small validation split (a user's short text) keeps its last partial batch.
        full = val_windows >= batch_size
        ds = data.piece_windows(pieces("validation"), vocabulary, cfg.seq_len, batch_size, shuffle=False,
                                drop_remainder=full, repeat=False)
        return ds.apply(tf.data.experimental.assert_cardinality(
            val_windows // batch_size if full else -(-val_windows // batch_size)))

    return TaskData(
        vocabulary=vocabulary, train_fn=train_fn, val_fn=val_fn, steps_per_epoch=windows // cfg.batch_size,
        splits={"train": f"train ({train_chars} characters)", "validation": f"validation ({val_chars} characters)",
                "test": "test"},
        extra_metadata={"unigram_counts": dict(counts)},  # the unigram baseline's character frequencies
    )


def _sentiment_targets(with_valence: bool):
    """{"text","label","valence"} -> (text, targets, sample weights); NaN valence -> weight 0, target 0."""

    def fn(ex):
        label = tf.reshape(tf.cast(ex["label"], tf.float32), [-1, 1])  # (batch, 1)
        y, w = {"polarity": label}, {"polarity": tf.ones_like(label)[:, 0]}
        if with_valence:
            valence = tf.reshape(tf.cast(ex["valence"], tf.float32), [-1, 1])  # (batch, 1), NaN = absent
            known = tf.math.is_finite(valence)
            y["valence"] = tf.where(known, valence, tf.zeros_like(valence))
            w["valence"] = tf.cast(known, tf.float32)[:, 0]
        return ex["text"], y, w

    return fn


# Fields a transfer source may differ in: they carry no weights.
_TRANSFER_FREE = {"sequence_length", "valence_head", "rnn.dropout"}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def transfer_source(path: str, model_cfg: SentimentConfig) -> tuple[list[str], dict[str, list[np.ndarray]], dict]:
    """(vocabulary, layer name -> weights, metadata) of the sentiment model a transfer run starts from.

    Raises:
        ModelDirError: `path` is not a loadable model directory.
        ConfigError: it is not a sentiment model, or its shape differs from `model_cfg`.
    """
    from textgen.artifacts import load_model_dir

    source = load_model_dir(path)
    if not isinstance(source.config, SentimentConfig):
        raise ConfigError(f"--init-from {path}: a {source.task} model; transfer needs a sentiment model")
    theirs, ours = _flat(config_lib.to_dict(source.config)), _flat(config_lib.to_dict(model_cfg))
    diff = sorted(k for k in set(theirs) | set(ours) if k not in _TRANSFER_FREE and theirs.get(k) != ours.get(k))
    if diff:
        raise ConfigError(
            f"--init-from {path}: the model shapes differ ("
            + ", ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in diff)
            + "); give this run the same model flags (only the sequence length, valence head and dropout may differ)")
    vocabulary = source.model.get_layer("vectorize").get_vocabulary()
    weights = {layer.name: layer.get_weights() for layer in source.model.layers if layer.get_weights()}
    info = {"path": str(path), "dataset": (source.metadata.get("dataset") or {}).get("name"),
            "weights_sha256": source.metadata.get("weights_sha256"), "metrics": source.metadata.get("metrics")}
    return vocabulary, weights, info


def _start_from(model: keras.Model, weights: dict[str, list[np.ndarray]], apply: bool = True) -> list[str]:
    """Copies `weights` into the layers of `model` with the same name and shapes; returns their names.

    `apply=False` only names them (a resumed run has its own checkpoint already).
    """
    copied = []
    for layer in model.layers:
        source = weights.get(layer.name)
        if source and [tuple(w.shape) for w in layer.get_weights()] == [tuple(w.shape) for w in source]:
            if apply:
                layer.set_weights(source)
            copied.append(layer.name)
    return copied


def _sentiment_data(dataset: str, model_cfg: SentimentConfig, cfg: TrainConfig, data_dir, manual_dir, seed: int) -> TaskData:
    from textgen import data
    from textgen.models import adapt_word_vocabulary

    source = transfer_source(cfg.init_from, model_cfg) if cfg.init_from else None  # fail before loading data

    kw = dict(data_dir=data_dir, manual_dir=manual_dir)
    train = data.load_sentiment_corpus(dataset, "train", **kw)
    if cfg.train_limit:
        train = train.take(cfg.train_limit)
    n_train = int(train.reduce(0, lambda n, _: n + 1))
    splits = {}
    if "validation" in data.split_names(dataset, **kw):
        val = data.load_sentiment_corpus(dataset, "validation", **kw)
        splits["validation"] = "validation"
    else:
        # The corpus has no validation split: hold out the last fraction of train (before shuffling).
        n_val = max(1, int(n_train * cfg.validation_fraction))
        val, train, n_train = train.skip(n_train - n_val), train.take(n_train - n_val), n_train - n_val
        splits["validation"] = f"last {n_val} examples of train"
    splits["train"] = f"train ({n_train} examples)"
    splits["test"] = "test"
    # A transfer run keeps its source's vocabulary: the copied embedding rows stay aligned with their words.
    vocabulary = source[0] if source else adapt_word_vocabulary(model_cfg, train.map(lambda ex: ex["text"]))
    labels = np.array([int(ex["label"]) for ex in train.as_numpy_iterator()])
    to_xyw = _sentiment_targets(model_cfg.valence_head)
    train = train.cache()

    def train_fn(batch_size: int, repeat: bool) -> tf.data.Dataset:
        ds = train.shuffle(min(n_train, 20000), seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat() if repeat else ds
        return ds.batch(batch_size, drop_remainder=repeat).map(to_xyw).prefetch(tf.data.AUTOTUNE)

    def val_fn(batch_size: int) -> tf.data.Dataset:
        return val.batch(batch_size).map(to_xyw).prefetch(tf.data.AUTOTUNE)

    return TaskData(
        vocabulary=vocabulary, train_fn=train_fn, val_fn=val_fn,
        steps_per_epoch=max(1, n_train // cfg.batch_size), splits=splits,
        extra_metadata={"train_label_counts": {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))},
                        **({"init_from": source[2]} if source else {})},
        init_weights=source[1] if source else None,
    )


def build_model(task: str, model_cfg, vocabulary) -> keras.Model:
    """The task's model under the current dtype policy (call inside a strategy scope if any)."""
    from textgen.models import build_char_lm, build_sentiment_model

    return build_char_lm(model_cfg, vocabulary) if task == "charlm" else build_sentiment_model(model_cfg, vocabulary)


def compile_model(task: str, model: keras.Model, cfg: TrainConfig, optimizer) -> None:
    """Compiles with the task's losses: char LM cross-entropy from logits; sentiment BCE + Huber.

    Keras losses cast bfloat16/float16 predictions to float32 before reducing, so mixed
    precision keeps a float32 loss.
    """
    if task == "charlm":
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=cfg.jit_compile)
        return
    losses = {"polarity": keras.losses.BinaryCrossentropy()}
    weights = {"polarity": 1.0}
    if "valence" in model.output:
        losses["valence"], weights["valence"] = keras.losses.Huber(), cfg.valence_weight
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights,
                  weighted_metrics={"polarity": [keras.metrics.BinaryAccuracy(name="accuracy")]},
                  jit_compile=cfg.jit_compile)


def _versions() -> dict:
    import textgen

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "textgen": textgen.__version__}


def _git_commit() -> str | None:
    """The source checkout's commit (+ "-dirty" with uncommitted changes), or None."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------
# The entry point.


@dataclasses.dataclass
class TrainResult:
    out_dir: Path | None  # None on a non-chief worker (it writes nothing that stays)
    history: dict[str, list[float]]
    metrics: dict
    resumed_from_epoch: int
    weights_sha256: str


def train(
    task: str,
    dataset: str,
    out_dir: str | os.PathLike,
    model_cfg,
    cfg: TrainConfig,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    overwrite: bool = False,
    verbose: int = 1,
    print_fn: Callable[[str], None] = print,
) -> TrainResult:
    """Trains `task` ("charlm" | "sentiment") on `dataset` and writes the run directory `out_dir`.

    Running the same call again after a crash continues from the last completed epoch.

    Raises:
        RunDirError: see `prepare_run_dir`.
        DivergedError: the loss became NaN/inf (nothing final written; completed epochs are kept).
        ConfigError: the model config does not match `task`.
    """
    if not isinstance(model_cfg, MODEL_CONFIGS[task]):
        raise ConfigError(f"task {task} needs a {MODEL_CONFIGS[task].__name__}; got {type(model_cfg).__name__}")
    if cfg.strategy == "multiworker" and task != "charlm":
        raise ConfigError("--strategy multiworker trains character models only (its custom loop has one loss); "
                          "use default or mirrored for sentiment")
    if cfg.monitor == "val_accuracy" and task != "sentiment":
        raise ConfigError("--monitor val_accuracy is for sentiment models; character models monitor val_loss")
    if cfg.init_from and task != "sentiment":
        raise ConfigError("--init-from (transfer) starts sentiment models only")
    if cfg.strategy == "multiworker" and cfg.seed is None:
        raise ConfigError("--strategy multiworker needs --seed: every worker must shuffle the data the same way")
    chief = cfg.strategy != "multiworker" or distributed.is_chief()
    if chief:  # fail before loading any data
        check_run_out(out_dir, [cfg.init_from, data_dir, manual_dir], overwrite)
    strategy = distributed.make_strategy(cfg.strategy)
    if cfg.seed is None:
        # A run started without --seed drew one; resuming it without --seed takes that one.
        saved = _saved_seed(Path(out_dir))
        cfg = dataclasses.replace(cfg, seed=saved if saved is not None else random.SystemRandom().randrange(2**31 - 1))
    set_seed(cfg.seed, cfg.deterministic)

    td = _charlm_data(dataset, cfg, data_dir, manual_dir, cfg.seed) if task == "charlm" else \
        _sentiment_data(dataset, model_cfg, cfg, data_dir, manual_dir, cfg.seed)
    run = {"task": task, "dataset": dataset,
           "model_config": {"kind": type(model_cfg).__name__, "config": config_lib.to_dict(model_cfg)},
           "train_config": {"kind": "TrainConfig", "config": config_lib.to_dict(cfg)},
           "vocabulary": td.vocabulary}

    # A non-chief worker trains in lock-step but keeps its files in a temporary folder it deletes.
    scratch = None if chief else Path(tempfile.mkdtemp(prefix="textgen-worker-"))
    out = Path(out_dir) if chief else scratch
    try:
        if cfg.strategy == "multiworker" and chief and RunDir(out).unfinished and not overwrite:
            raise RunDirError(f"{out} holds an unfinished run; multi-worker runs do not resume: pass --overwrite")
        rd, state, run = prepare_run_dir(out, run, overwrite or cfg.strategy == "multiworker")
        print_fn(json.dumps({"task": task, "dataset": dataset, "out": str(out),
                             "model": run["model_config"], "train": run["train_config"],
                             "resume_from_epoch": state["epoch"] if state else 0}))
        result = _fit_and_save(task, dataset, rd, state, model_cfg, cfg, td, strategy, chief, verbose, print_fn,
                               data_dir, manual_dir)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def _fit_and_save(task, dataset, rd: RunDir, state, model_cfg, cfg: TrainConfig, td: TaskData, strategy,
                  chief: bool, verbose: int, print_fn, data_dir, manual_dir) -> TrainResult:
    steps = cfg.steps_per_epoch or td.steps_per_epoch
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        with strategy.scope():
            model = build_model(task, model_cfg, td.vocabulary)
            compile_model(task, model, cfg, make_optimizer(cfg, steps * cfg.epochs))
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if td.init_weights:
        copied = _start_from(model, td.init_weights, apply=state is None)
        td.extra_metadata["init_from"]["layers_copied"] = copied
        if state is None:
            print_fn(f"starting from {cfg.init_from}: copied {', '.join(copied) or 'no layer'}")
    callback = RunState(rd.state_dir, cfg.patience, state, monitor=cfg.monitor)
    if state is not None:
        callback.restore(model, state)
        print_fn(f"resuming {rd.path} after epoch {state['epoch']} of {cfg.epochs}")

    done = callback.epoch >= cfg.epochs or callback.stopped_early
    if not done and cfg.strategy == "multiworker":
        global_batch = cfg.batch_size
        val_steps = cfg.validation_steps or _count_batches(td.val_fn(global_batch))
        distributed.fit_custom_loop(
            strategy, model,
            loss_fn=_per_element_loss(task),
            train_input_fn=distributed.shard_batches(lambda b: td.train_fn(b, True), global_batch),
            val_input_fn=distributed.shard_batches(lambda b: td.val_fn(b).repeat(), global_batch),
            epochs=cfg.epochs, steps_per_epoch=steps, validation_steps=val_steps,
            callbacks=[callback], print_fn=print_fn if verbose else (lambda s: None),
        )
    elif not done:
        train_ds = td.train_fn(cfg.batch_size, bool(cfg.steps_per_epoch))
        val_ds = td.val_fn(cfg.batch_size)
        if cfg.validation_steps:
            val_ds = val_ds.take(cfg.validation_steps)
        callbacks: list = [callback]
        if cfg.tensorboard and chief:
            callbacks.append(ScalarLogs(rd.state_dir / LOGS_DIR))
        if chief:
            sampler = _epoch_sampler(task, model_cfg, td.vocabulary, cfg.sample_chars) if cfg.sample_chars else None
            # Into .resume/ while the run is unfinished (a failed run never touches a finished one's
            # files); _write_final moves it beside the model.
            callbacks.append(Progress(rd.state_dir / PROGRESS_FILE, steps, cfg.epochs, sampler))
        model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, initial_epoch=callback.epoch,
                  steps_per_epoch=cfg.steps_per_epoch or None, callbacks=callbacks, verbose=verbose,
                  shuffle=False)  # the tf.data pipeline shuffles (seeded)
    if callback.diverged is not None:
        epoch, batch, value = callback.diverged
        kept = callback.epoch
        if kept == 0 and chief:
            shutil.rmtree(rd.state_dir, ignore_errors=True)
            if {p.name for p in rd.path.iterdir()} <= {folders.MARKER}:  # only what this run created
                shutil.rmtree(rd.path)
        raise DivergedError(
            f"the loss became {value} in epoch {epoch}" + (f" at batch {batch}" if batch else "")
            + f"; training stopped and nothing was written to {rd.path}"
            + (f" except the checkpoint of epoch {kept} in {STATE_DIR}/" if kept else "")
            + ". Lower the learning rate (--set learning_rate=...) or keep gradient clipping on (clipnorm > 0)"
        )
    callback.restore_best(model)
    final = _export_model(task, model_cfg, td.vocabulary, model)
    digest = distributed.weights_digest(final)
    history = {k: [h.get(k) for h in callback.history] for k in (callback.history[0] if callback.history else {})}
    metrics: dict = {}
    if chief:
        from textgen import evaluate

        if task == "charlm":
            metrics = evaluate.evaluate_charlm_split(final, dataset, "test", data_dir=data_dir, manual_dir=manual_dir,
                                                     unigram_counts=td.extra_metadata["unigram_counts"])
        else:
            metrics = evaluate.evaluate_sentiment_split(final, dataset, "test", data_dir=data_dir, manual_dir=manual_dir,
                                                        majority=td.extra_metadata["train_label_counts"])
        metadata = {
            "task": task,
            "dataset": {"name": dataset, **_dataset_info(dataset, data_dir, manual_dir), "splits": td.splits},
            "metrics": metrics,
            "validation": callback.validation_summary(),
            "epochs_run": callback.epoch, "stopped_early": callback.stopped_early, "resumes": callback.resumes,
            "training_time_s": round(callback.elapsed, 3), "seed": cfg.seed, "precision": cfg.precision,
            "strategy": cfg.strategy, "num_replicas": strategy.num_replicas_in_sync,
            "versions": _versions(), "git_commit": _git_commit(), "weights_sha256": digest,
            **td.extra_metadata,
        }
        _write_final(rd, final, model_cfg, cfg, history, metadata, f"{task} on {dataset}")
    if cfg.strategy == "multiworker":
        distributed.barrier(strategy)  # nobody exits before the chief has written the model
    print_fn(json.dumps({"out": str(rd.path) if chief else None, "epochs_run": callback.epoch,
                         "best_epoch": callback.best_epoch, "metrics": metrics, "weights_sha256": digest}))
    return TrainResult(rd.path if chief else None, history, metrics, state["epoch"] if state else 0, digest)


def _epoch_sampler(task: str, model_cfg, vocabulary, length: int) -> Callable[[keras.Model, int], str]:
    """(training model, epoch) -> `length` characters sampled (temperature 0.8, seed = epoch) from a
    float32 copy of its weights, for the progress file. Character models only."""
    if task != "charlm":
        raise ConfigError("sample_chars (a sample after each epoch) is for character models")

    def sample(trained: keras.Model, epoch: int) -> str:
        from textgen.sampling import Sampler, SamplingParams

        copy = _export_model(task, model_cfg, vocabulary, trained)
        params = SamplingParams(length=length, temperature=0.8, seed=epoch)
        return Sampler(copy, jit_compile=False).generate("", params)[0]

    return sample


def _per_element_loss(task: str):
    if task != "charlm":
        raise TextgenError("--strategy multiworker trains character models only (the custom loop has one loss)")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    return lambda y, logits: loss(y, tf.cast(logits, tf.float32))  # (batch, time)


def _count_batches(ds: tf.data.Dataset) -> int:
    n = int(ds.cardinality())
    return n if n >= 0 else int(ds.reduce(0, lambda c, _: c + 1))


def _export_model(task: str, model_cfg, vocabulary, trained: keras.Model) -> keras.Model:
    """A float32 copy built outside any strategy scope: what is saved and evaluated."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        model = build_model(task, model_cfg, vocabulary)  # outside the strategy scope: plain variables
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.set_weights([np.asarray(w, dtype=np.float32) if np.asarray(w).dtype.kind == "f" else np.asarray(w)
                       for w in trained.get_weights()])
    return model


def _dataset_info(dataset: str, data_dir, manual_dir) -> dict:
    """The dataset's version and, for a user's corpus, its source files with their sha256 (for the card)."""
    from textgen import data

    try:
        info = {"version": str(data.dataset_version(dataset, data_dir=data_dir, manual_dir=manual_dir))}
    except (AttributeError, TextgenError):
        return {"version": None}
    if data.spec(dataset).user:
        from textgen import corpus

        meta = corpus.recorded(data.spec(dataset).config, data_dir) or {}
        info["corpus"] = {"characters": meta.get("characters"), "sources": [
            {k: s[k] for k in ("path", "bytes", "characters", "sha256", "encoding")} for s in meta.get("sources", [])]}
    return info


def _write_final(rd: RunDir, model, model_cfg, cfg: TrainConfig, history: dict, metadata: dict, title: str) -> None:
    """Writes every final file (each atomically), then drops the resume state."""
    from textgen.plots import plot_training_curve

    config_lib.save_config(cfg, rd.path / TRAIN_CONFIG_FILE)
    artifacts.write_json(rd.path / HISTORY_FILE, history)
    plot_training_curve(history, rd.path / CURVE_FILE, title=title)
    artifacts.save_model_dir(rd.path, model, model_cfg, metadata)
    if (rd.state_dir / PROGRESS_FILE).is_file():
        os.replace(rd.state_dir / PROGRESS_FILE, rd.path / PROGRESS_FILE)
    logs = rd.state_dir / LOGS_DIR
    if logs.is_dir():
        shutil.rmtree(rd.path / LOGS_DIR, ignore_errors=True)
        os.replace(logs, rd.path / LOGS_DIR)
    shutil.rmtree(rd.state_dir, ignore_errors=True)
