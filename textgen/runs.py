"""A run directory and its resume state: what is in it, whether it may be written, and the
callbacks that keep it (checkpoints, history, early stopping, progress, TensorBoard scalars).

While a run is unfinished, `DIR/.resume/` holds `run.json` (task, dataset, both configs,
vocabulary), `state.json` (the commit point: last completed epoch, history, early-stopping state)
and the weights (+ optimizer state) of that epoch. Every file is written under a temporary name and
renamed, and `state.json` is written last, so a `kill -9` at any moment leaves either the previous
or the new epoch, never a mix. Keras's own `BackupAndRestore` writes its weights and its epoch
number as two non-atomic files, which a kill between them desynchronises; hence `RunState`.
Nothing here knows which task a run trains (`textgen.train` runs the fit loop).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from textgen import artifacts, folders
from textgen.atomic import replacing
from textgen import config as config_lib
from textgen.config import TRAIN_CONFIG_FILE, ConfigError  # noqa: F401  (TRAIN_CONFIG_FILE re-exported)
from textgen.errors import TextgenError

STATE_DIR = ".resume"
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
        with replacing(self.state_dir / name, suffix=".weights.h5", absent=True) as tmp:  # h5py: no empty file
            self.model.save_weights(tmp)

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
