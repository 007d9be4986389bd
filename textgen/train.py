"""Training: the fit loop (`model.fit`, or the multi-worker loop) over a task's data; writes a run directory.

A run directory `DIR` ends up holding:

    model.keras, config.json, metadata.json   the model directory (textgen.artifacts)
    train_config.json                         the TrainConfig (`textgen.config.load_config` reads it)
    history.json, training_curve.png          loss / val_loss per epoch
    logs/                                     TensorBoard event files (train/, validation/)

The run directory and its resume state (`DIR/.resume/`, atomic per-epoch checkpoints) are
`textgen.runs`; what differs between tasks (data, model, loss, metrics) is the task's module in
`textgen.tasks`, which this file asks and never names. The final files are written only after
training succeeds, so a diverged or killed run never touches the model a finished run left in `DIR`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from textgen import artifacts, distributed, folders, tasks
from textgen import config as config_lib
from textgen.config import ConfigError, TrainConfig
from textgen.errors import TextgenError
from textgen.provenance import provenance
from textgen.runs import (  # noqa: F401  (the run directory's names, also read as textgen.train.*)
    CURVE_FILE, HISTORY_FILE, LOGS_DIR, PROGRESS_FILE, STATE_DIR, TRAIN_CONFIG_FILE,
    Progress, RunDir, RunDirError, RunState, ScalarLogs, _run_mismatch, _saved_seed, check_run_out, prepare_run_dir,
)
from textgen.tasks import TaskData  # noqa: F401  (a task's data, also read as textgen.train.TaskData)
from textgen.transfer import start_from


class DivergedError(TextgenError):
    """The loss became NaN or infinite; training stopped and nothing final was written."""


# --------------------------------------------------------------------------------------------
# Pieces of a run: seeds, optimizer, data, model.


def set_seed(seed: int, deterministic: bool) -> None:
    """Seeds Python, NumPy and TF; optionally makes TF ops deterministic (process-wide)."""
    keras.utils.set_random_seed(seed)
    random.seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_optimizer(cfg: TrainConfig, total_steps: int, model: keras.Model | None = None) -> keras.optimizers.Optimizer:
    """Adam with the configured schedule over `total_steps` and gradient clipping; with
    discriminative rates or gradual unfreezing, one step scale per layer group of `model`
    (`textgen.finetune.GroupAdam`)."""
    lr: Any = cfg.learning_rate
    total_steps = max(1, total_steps)
    if cfg.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=total_steps, alpha=0.1)
    elif cfg.schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(cfg.learning_rate, max(1, total_steps // 4), 0.5)
    if _fine_tunes(cfg) and model is not None:
        from textgen.finetune import GroupAdam, layer_groups

        groups = layer_groups(model)
        return GroupAdam({name: g for g, names in enumerate(groups) for name in names}, len(groups),
                         learning_rate=lr, clipnorm=cfg.clipnorm or None)
    return keras.optimizers.Adam(learning_rate=lr, clipnorm=cfg.clipnorm or None)


def _fine_tunes(cfg: TrainConfig) -> bool:
    return cfg.discriminative != 1.0 or cfg.unfreeze > 0


def build_model(task: str, model_cfg, vocabulary) -> keras.Model:
    """The task's model under the current dtype policy (call inside a strategy scope if any)."""
    return tasks.get(task).build(model_cfg, vocabulary)


def compile_model(task: str, model: keras.Model, cfg: TrainConfig, optimizer) -> None:
    """Compiles with the task's losses and metrics (Keras losses cast bfloat16/float16 predictions
    to float32 before reducing, so mixed precision keeps a float32 loss)."""
    tasks.get(task).compile(model, cfg, optimizer)


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
    """Trains `task` (a registered task's name, `textgen.tasks.names()`) on `dataset` and writes the run directory `out_dir`.

    Running the same call again after a crash continues from the last completed epoch.

    Raises:
        RunDirError: see `prepare_run_dir`.
        DivergedError: the loss became NaN/inf (nothing final written; completed epochs are kept).
        ConfigError: the model config does not match `task`.
    """
    spec = tasks.get(task)
    if not spec.trains:
        raise ConfigError(f"{spec.models} are not trained: choose one of {', '.join(tasks.trainable())}")
    if not isinstance(model_cfg, spec.config_class):
        raise ConfigError(f"task {task} needs a {spec.config_class.__name__}; got {type(model_cfg).__name__}")
    spec.check(cfg)
    if cfg.strategy == "multiworker" and cfg.seed is None:
        raise ConfigError("--strategy multiworker needs --seed: every worker must shuffle the data the same way")
    chief = cfg.strategy != "multiworker" or distributed.is_chief()
    if chief:  # fail before loading any data
        check_run_out(out_dir, [cfg.init_from, cfg.init_from_backward, data_dir, manual_dir], overwrite)
    strategy = distributed.make_strategy(cfg.strategy)
    if cfg.seed is None:
        # A run started without --seed drew one; resuming it without --seed takes that one.
        saved = _saved_seed(Path(out_dir))
        cfg = dataclasses.replace(cfg, seed=saved if saved is not None else random.SystemRandom().randrange(2**31 - 1))
    set_seed(cfg.seed, cfg.deterministic)

    td = spec.data(dataset, model_cfg, cfg, data_dir, manual_dir, cfg.seed)
    run = {"task": task, "dataset": dataset,
           "model_config": {"kind": type(model_cfg).__name__, "config": config_lib.to_dict(model_cfg)},
           "train_config": {"kind": "TrainConfig", "config": config_lib.to_dict(cfg)},
           "vocabulary": td.vocabulary}

    # A non-chief worker trains in lock-step but keeps its files in a temporary folder it deletes.
    # Every worker is given the same --out (a shared file system): only the chief writes it, and
    # the others resume from the chief's checkpoint there.
    scratch = None if chief else Path(tempfile.mkdtemp(prefix="textgen-worker-"))
    out = Path(out_dir) if chief else scratch
    try:
        if not chief:
            _mirror_resume_state(Path(out_dir), scratch, run)
        rd, state, run = prepare_run_dir(out, run, overwrite if chief else True)
        if cfg.strategy == "multiworker":
            distributed.check_same(strategy, state["epoch"] if state else 0,
                                   "the epoch the workers resume from (give every worker the same --out, on a file "
                                   "system they share)", error=RunDirError)
        print_fn(json.dumps({"task": task, "dataset": dataset, "out": str(out),
                             "model": run["model_config"], "train": run["train_config"],
                             "resume_from_epoch": state["epoch"] if state else 0}))
        result = _fit_and_save(task, dataset, rd, state, model_cfg, cfg, td, strategy, chief, verbose, print_fn,
                               data_dir, manual_dir)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def _mirror_resume_state(shared: Path, scratch: Path, run: dict) -> None:
    """Copies the chief's resume state from the shared run directory into a worker's scratch
    folder when it belongs to this very run (same task, data, configs and vocabulary)."""
    source = RunDir(shared)
    if not source.unfinished or source.read_state() is None:
        return
    if _run_mismatch(json.loads((source.state_dir / "run.json").read_text(encoding="utf-8")), run) is None:
        shutil.copytree(source.state_dir, scratch / STATE_DIR, ignore=shutil.ignore_patterns(LOGS_DIR, PROGRESS_FILE))


def _fit_and_save(task, dataset, rd: RunDir, state, model_cfg, cfg: TrainConfig, td: TaskData, strategy,
                  chief: bool, verbose: int, print_fn, data_dir, manual_dir) -> TrainResult:
    steps = cfg.steps_per_epoch or td.steps_per_epoch
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        with strategy.scope():
            model = tasks.get(task).training_model(model_cfg, cfg, td.vocabulary)
            compile_model(task, model, cfg, make_optimizer(cfg, steps * cfg.epochs, model))
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if td.init_weights:
        copied = start_from(model, td.init_weights, apply=state is None)
        if "init_from" in td.extra_metadata:  # a transfer: say what came from the source
            td.extra_metadata["init_from"]["layers_copied"] = copied
            if state is None:
                print_fn(f"starting from {cfg.init_from}: copied {', '.join(copied) or 'no layer'}")
    callback = RunState(rd.state_dir, cfg.patience, state, monitor=cfg.monitor)
    schedule = []
    if _fine_tunes(cfg):
        from textgen.finetune import GroupSchedule

        schedule = [GroupSchedule(cfg.discriminative, cfg.unfreeze)]
    if state is not None:
        with strategy.scope():  # the optimizer's slots are built as the strategy's variables
            callback.restore(model, state)
        print_fn(f"resuming {rd.path} after epoch {state['epoch']} of {cfg.epochs}")

    done = callback.epoch >= cfg.epochs or callback.stopped_early
    if not done and cfg.strategy == "multiworker":
        global_batch = cfg.batch_size
        val_steps = cfg.validation_steps or _count_batches(td.val_fn(global_batch))
        distributed.fit_custom_loop(
            strategy, model,
            loss_fn=tasks.get(task).per_element_loss(),
            train_input_fn=distributed.shard_batches(lambda b: td.train_fn(b, True), global_batch),
            val_input_fn=distributed.shard_batches(lambda b: td.val_fn(b).repeat(), global_batch),
            epochs=cfg.epochs, initial_epoch=callback.epoch, steps_per_epoch=steps, validation_steps=val_steps,
            callbacks=[*schedule, callback], print_fn=print_fn if verbose else (lambda s: None),
        )
    elif not done:
        train_ds = td.train_fn(cfg.batch_size, bool(cfg.steps_per_epoch))
        val_ds = td.val_fn(cfg.batch_size)
        if cfg.validation_steps:
            val_ds = val_ds.take(cfg.validation_steps)
        callbacks: list = [*schedule, callback]
        if cfg.tensorboard and chief:
            callbacks.append(ScalarLogs(rd.state_dir / LOGS_DIR))
        if chief:
            sampler = tasks.get(task).epoch_sampler(
                model_cfg, td.vocabulary, cfg.sample_chars,
                lambda trained: _export_model(task, model_cfg, td.vocabulary, trained)) if cfg.sample_chars else None
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
    if chief and cfg.score_test:
        metrics = tasks.get(task).evaluate(final, dataset, "test", metadata=td.extra_metadata, data_dir=data_dir,
                                           manual_dir=manual_dir)
    if chief:
        metadata = {
            "task": task,
            "dataset": {"name": dataset, **_dataset_info(dataset, data_dir, manual_dir), "splits": td.splits},
            "metrics": metrics,  # {} under --no-test: the test split was not read
            "test_scored_by_training": cfg.score_test,
            "validation": callback.validation_summary(),
            "epochs_run": callback.epoch, "stopped_early": callback.stopped_early, "resumes": callback.resumes,
            "training_time_s": round(callback.elapsed, 3), "seed": cfg.seed, "precision": cfg.precision,
            "strategy": cfg.strategy, "num_replicas": strategy.num_replicas_in_sync,
            **provenance(), "weights_sha256": digest,
            **td.extra_metadata,
        }
        _write_final(rd, final, model_cfg, cfg, history, metadata, f"{task} on {dataset}")
    if cfg.strategy == "multiworker":
        distributed.barrier(strategy)  # nobody exits before the chief has written the model
    print_fn(json.dumps({"out": str(rd.path) if chief else None, "epochs_run": callback.epoch,
                         "best_epoch": callback.best_epoch, "metrics": metrics, "weights_sha256": digest}))
    return TrainResult(rd.path if chief else None, history, metrics, state["epoch"] if state else 0, digest)


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
