"""`tf.distribute` strategies for training, and the custom loop that multi-worker training needs.

Routes (why two):
- `default` and `mirrored` train with `model.fit` inside `strategy.scope()`.
- `multiworker` (`MultiWorkerMirroredStrategy`, configured by the standard `TF_CONFIG`) trains
  with a custom step run by `strategy.run`: in Keras 3.15 `model.fit` under this strategy fails
  (keras-team/keras#20585), while a plain `strategy.run` step works unpatched. Every worker runs
  the same number of steps (collectives would hang otherwise), reads its own shard of the
  batches, and the gradients are all-reduced, so all workers end with identical weights.

Example TF_CONFIG for worker 0 of two (worker 0 is the chief):
    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from textgen.config import STRATEGIES  # noqa: F401  (re-exported)
from textgen.errors import TextgenError



class StrategyError(TextgenError):
    """The requested strategy cannot run here (e.g. multiworker without TF_CONFIG)."""


def tf_config() -> dict:
    """The parsed `TF_CONFIG` environment variable ({} when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise StrategyError(f"TF_CONFIG is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise StrategyError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    return value


def is_chief() -> bool:
    """True for the worker that writes files: the `chief` task, or worker 0 when there is none."""
    cfg = tf_config()
    task = cfg.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cfg.get("cluster", {})


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Builds the strategy named `name` (one of `STRATEGIES`)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        cfg = tf_config()
        if not cfg.get("cluster") or not cfg.get("task"):
            raise StrategyError(
                "--strategy multiworker needs TF_CONFIG with 'cluster' and 'task' on every worker "
                "(see docs/training.md)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise StrategyError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


def weights_digest(model: keras.Model) -> str:
    """sha256 of all weights in order: equal digests mean bit-identical models."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def shard_batches(dataset_fn: Callable[[int], tf.data.Dataset], global_batch: int):
    """A `distribute_datasets_from_function` input fn: worker i takes every n-th batch.

    Args:
        dataset_fn: per-replica batch size -> a repeated, batched dataset (same order everywhere).
        global_batch: the batch size summed over all replicas.
    """

    def fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        ds = dataset_fn(ctx.get_per_replica_batch_size(global_batch))
        return ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)

    return fn


def fit_custom_loop(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    *,
    loss_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    train_input_fn,
    val_input_fn,
    epochs: int,
    steps_per_epoch: int,
    initial_epoch: int = 0,
    validation_steps: int,
    callbacks: list[keras.callbacks.Callback],
    print_fn: Callable[[str], None] = print,
) -> None:
    """Trains `model` (built and compiled inside `strategy.scope()`) with `strategy.run` steps.

    `loss_fn(y, logits)` returns per-element losses (no reduction), e.g. (batch, time).
    The callbacks get `on_train_begin`, `on_train_batch_end` ({"loss"}), `on_epoch_end`
    ({"loss", "val_loss"}) and `on_train_end`, so the run-state callback of `textgen.train`
    (history, early stopping, NaN stop) works unchanged; training stops when a callback sets
    `model.stop_training` (every worker sees the same losses, so all stop together).
    """
    optimizer = model.optimizer
    train_iter = iter(strategy.distribute_datasets_from_function(train_input_fn))
    val_dist = strategy.distribute_datasets_from_function(val_input_fn) if val_input_fn else None

    def replica_loss(x, y):
        # loss_fn gives per-element losses, e.g. (batch, time); mean over all but the batch
        # axis -> (batch,), then sum / global batch size, so summing over replicas is the mean.
        per_element = loss_fn(y, model(x, training=True))
        per_example = tf.reshape(per_element, [tf.shape(per_element)[0], -1])
        return tf.nn.compute_average_loss(tf.reduce_mean(per_example, axis=1))

    @tf.function
    def train_step(batch):
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = replica_loss(x, y)
            grads = tape.gradient(loss, model.trainable_variables)
            # The Keras optimizer all-reduces (sums) the gradients across replicas.
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        per_replica = strategy.run(step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    @tf.function
    def val_step(batch):
        def step(x, y):
            per_element = loss_fn(y, model(x, training=False))
            per_example = tf.reshape(per_element, [tf.shape(per_element)[0], -1])
            return tf.nn.compute_average_loss(tf.reduce_mean(per_example, axis=1))

        per_replica = strategy.run(step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    for cb in callbacks:
        cb.set_model(model)
        cb.on_train_begin()
    model.stop_training = False
    for epoch in range(initial_epoch, epochs):  # a resumed run starts after its last completed epoch
        start, total = time.perf_counter(), 0.0
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        for step_i in range(steps_per_epoch):
            loss = float(train_step(next(train_iter)))
            total += loss
            for cb in callbacks:
                cb.on_train_batch_end(step_i, {"loss": loss})
            if model.stop_training:
                break
        if model.stop_training and not math.isfinite(loss):
            break
        logs = {"loss": total / max(1, step_i + 1)}
        if val_dist is not None:
            val_iter = iter(val_dist)
            losses = [float(val_step(next(val_iter))) for _ in range(validation_steps)]
            logs["val_loss"] = float(np.mean(losses))
        print_fn(
            f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}"
            + (f", val_loss {logs['val_loss']:.4f}" if "val_loss" in logs else "")
            + f" ({time.perf_counter() - start:.1f} s)"
        )
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end()


def check_same(strategy: tf.distribute.Strategy, value: int, what: str, error=RuntimeError) -> None:
    """Raises `error` on every worker unless all of them hold the same integer `value` (one
    all-reduce of (value, value², 1): equal values iff sum² = n·Σvalue²)."""

    @tf.function
    def all_reduce(v):
        local = tf.stack([v, v * v, 1.0])
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: local), axis=None)

    total, squares, n = (float(x) for x in all_reduce(tf.constant(float(value), tf.float64)))
    if abs(total * total - n * squares) > 1e-6 * max(1.0, n * squares):  # Cauchy-Schwarz: equal iff all equal
        raise error(f"the workers disagree on {what}: this one has {value}, their mean is {total / n:g}")


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Blocks until every worker reaches it (an all-reduce of 1.0).

    The chief evaluates and writes the model after training; the other workers wait here so that
    none exits first (the coordination service treats a worker that stops early as crashed).
    """

    @tf.function
    def all_reduce():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)

    all_reduce()
