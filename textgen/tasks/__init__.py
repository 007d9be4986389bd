"""Tasks: what differs between kinds of model, one module each, behind a small registry.

A task (the character language model, sentiment, ...) owns its config class, the flags of
`textgen train NAME`, its data pipeline from a TFDS split, building and compiling its model, its
held-out metrics, and its checks on a run's settings. The shared machinery (the run directory and
resume state in `textgen.runs`, the fit loop in `textgen.train`, the model directory in
`textgen.artifacts`, the CLI) asks the task found by `get(name)` or `for_config(config)` and never
tests a task's name (keras-hub's generic code never names a model family either).

Adding a task:

    class ToyTask(tasks.Task):
        name, config_class = "toy", ToyConfig          # ToyConfig registered with config.register_config
        default_dataset = "tiny_shakespeare"
        def data(self, dataset, model_cfg, cfg, data_dir, manual_dir, seed): ...   # -> TaskData
        def build(self, model_cfg, vocabulary): ...                               # -> keras.Model
        def compile(self, model, cfg, optimizer): ...
        def evaluate(self, model, dataset, split, *, metadata, **flags): ...     # -> metrics

    tasks.register(ToyTask())

This module imports neither TensorFlow nor Keras (the CLI builds its flags from it at start-up);
task modules import them inside their methods.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, ClassVar

from textgen.config import ConfigError


@dataclasses.dataclass
class TaskData:
    """What a task's data pipeline hands to the training loop."""

    vocabulary: list[str]  # characters (charlm) or words from TextVectorization (sentiment)
    train_fn: Callable[[int, bool], Any]  # (batch size, repeat) -> tf.data.Dataset of batches
    val_fn: Callable[[int], Any] | None  # batch size -> tf.data.Dataset of batches (not repeated)
    steps_per_epoch: int  # batches in one full pass over the training data
    splits: dict  # split name -> how it was used
    extra_metadata: dict  # written into metadata.json (baseline counts, the transfer source, ...)
    # layer name -> weights that start a fresh run: the --init-from source's (recorded as init_from in
    # extra_metadata), or the task's own starting point (a word LM's output bias at the log frequencies)
    init_weights: dict | None = None


class Task:
    """One kind of model. Subclasses set the class attributes and override what their task needs;
    the defaults here are what a task without that feature does (refuse, or nothing)."""

    name: ClassVar[str]  # `textgen train NAME`, metadata.json's "task"
    config_class: ClassVar[type]  # the model config dataclass (config.json's "kind")
    help: ClassVar[str] = ""  # one line for `textgen train --help`
    default_dataset: ClassVar[str]  # --dataset when none is given
    datasets_help: ClassVar[str] = ""  # the prepared corpora it trains on, for --dataset's help
    token: ClassVar[str] = "token"  # what the embedding embeds, for --embedding-dim's help
    models: ClassVar[str] = "models of this task"  # the plural in messages ("character models")
    monitors: ClassVar[tuple[str, ...]] = ("val_loss",)  # what may pick the kept epoch (--monitor)
    multiworker: ClassVar[bool] = False  # trains under --strategy multiworker (needs per_element_loss)
    transfer: ClassVar[bool] = False  # starts from another model (--init-from)
    adversarial: ClassVar[bool] = False  # adversarial training on its embeddings (training_model wraps the model)
    # Its models generate text with textgen.sampling (a sample after each epoch with --sample-chars,
    # samples on the card, `textgen generate`, the app's Generate page, the cell comparison).
    generates: ClassVar[bool] = False
    # Its models read texts into P(positive) with textgen.inference (`textgen predict`, the app's
    # Sentiment page).
    predicts: ClassVar[bool] = False
    # `textgen train NAME` trains its models; a task whose models are made otherwise (an average of
    # trained models, `textgen average`) has no train sub-command.
    trains: ClassVar[bool] = True

    # ---- the `textgen train NAME` command

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        """Adds the flags only this task has (the shared ones are in `textgen.train_flags`)."""

    def flag_values(self, args: argparse.Namespace) -> tuple[dict, dict]:
        """(model config values, TrainConfig values) from this task's own flags; None = default."""
        return {}, {}

    def check(self, cfg) -> None:
        """Raises ConfigError for TrainConfig settings this task cannot train with."""
        def only(feature) -> str:
            return " or ".join(t.models for t in _TASKS.values() if t.trains and feature(t)) or "no models"

        if cfg.strategy == "multiworker" and not self.multiworker:
            raise ConfigError(f"--strategy multiworker trains {only(lambda t: t.multiworker)} only (its custom loop "
                              "has one per-element loss); use default or mirrored for " + self.models)
        if cfg.monitor not in self.monitors:
            raise ConfigError(f"--monitor {cfg.monitor} is for {only(lambda t: cfg.monitor in t.monitors)}; "
                              f"{self.models} monitor {' or '.join(self.monitors)}")
        if cfg.init_from and not self.transfer:
            raise ConfigError(f"--init-from (transfer) starts {only(lambda t: t.transfer)} only")
        if cfg.sample_chars and not self.generates:
            raise ConfigError(f"sample_chars (a sample after each epoch) is for {only(lambda t: t.generates)}")
        if cfg.adversarial and not self.adversarial:
            raise ConfigError(f"adversarial training is for {only(lambda t: t.adversarial)}")

    # ---- training

    def data(self, dataset: str, model_cfg, cfg, data_dir, manual_dir, seed: int) -> TaskData:
        raise NotImplementedError

    def build(self, model_cfg, vocabulary):
        """The task's Keras model under the current dtype policy."""
        raise NotImplementedError

    def training_model(self, model_cfg, cfg, vocabulary):
        """The model `fit` trains: `build`'s, unless a training option (adversarial training) needs
        another with the same weights in the same order; what is saved is always `build`'s."""
        return self.build(model_cfg, vocabulary)

    def compile(self, model, cfg, optimizer) -> None:
        raise NotImplementedError

    def per_element_loss(self):
        """(y, logits) -> per-element loss, for the multi-worker custom loop (tasks with `multiworker`)."""
        raise NotImplementedError

    def epoch_sampler(self, model_cfg, vocabulary, length: int, export: Callable):
        """(training model, epoch) -> a text for the progress file (tasks that `generates`);
        `export(trained)` makes the float32 copy to sample from."""
        raise NotImplementedError

    def evaluate(self, model, dataset: str | None, split: str, *, metadata: dict, data_dir=None, manual_dir=None,
                 limit: int = 0, text_file: str | None = None, baselines: bool = False, baseline_train_limit: int = 0,
                 baseline_train_dataset: str | None = None, streams: int = 64, train_config=None) -> dict:
        """Held-out metrics of a model on `split` of `dataset` (first `limit` examples when > 0), with
        the baselines the task keeps; `metadata` is its metadata.json (baseline counts), `train_config`
        the TrainConfig it was trained with (None when not recorded or another dataset). The other
        arguments are `textgen evaluate`'s flags; raise `textgen.evaluate.EvaluationError` for those
        the task has no use for."""
        raise NotImplementedError

    # ---- exports (textgen.export)

    export_formats: ClassVar[tuple[str, ...]] = ("savedmodel",)  # what `textgen export --format` offers

    def export(self, model, out, fmt: str, batch_size: int) -> None:
        """Writes the model in format `fmt` (one of `export_formats`) into the empty folder `out`."""
        raise NotImplementedError

    # ---- the model card (textgen.card; the pieces are in textgen.cardkit)

    card_limitations: ClassVar[dict[str, str]] = {}  # anchor set -> the card's "Limitations" text

    def card_anchor_set(self, dataset: str, name: str) -> str | None:
        """Which of `card_limitations` (and the task's anchors) fit a model trained on `dataset`."""
        return None

    def card_describe(self, f) -> str:
        """The card's first paragraph (`cardkit.stack` describes a recurrent stack: "2-layer lstm (8 units)")."""
        from textgen.cardkit import stack

        return f"A {self.help or self.name}: {stack(f.config.rnn)}."

    def card_tables(self, f) -> list:
        """[(heading, cardkit.Table)]: the metrics, baselines and anchors."""
        return []

    def card_verdicts(self, f) -> list[str]:
        """Sentences comparing the metrics with the task's targets (computed, never typed)."""
        return []

    def card_model_table(self, f):
        """The card's "Model and training" table (`textgen.card_facts.model_table`: size, data, training)."""
        from textgen.card_facts import model_table

        return model_table(f)

    def card_use(self, f, q) -> tuple[list[str], list[str]]:
        """Lines of the card's "Load it elsewhere" examples: (after `model = keras.models.load_model(...)`,
        after `exported = tf.saved_model.load(...)` up to and including the closing fence); `q`
        quotes a string as a Python literal."""
        return [], ["```", ""]

    # ---- the model directory

    def saved_metadata(self, model) -> dict:
        """Entries metadata.json takes from the model itself when it is saved (e.g. its vocabulary)."""
        return {}

    def architecture(self, model, config) -> dict:
        """{field: (value in config, value read from the model)} that loading compares
        (`textgen.artifacts.architecture_vs_config`: the recurrent stack and embedding)."""
        from textgen.artifacts import architecture_vs_config

        return architecture_vs_config(model, config)

    def check_loaded(self, model, metadata: dict) -> str | None:
        """What is inconsistent between a loaded model and its metadata.json, or None."""
        return None


class LanguageModelTask(Task):
    """A task whose model predicts the next token at every position: logits (batch, time, vocab)
    against ids (batch, time), one cross-entropy (so the multi-worker loop can train it too)."""

    multiworker: ClassVar[bool] = True

    def compile(self, model, cfg, optimizer) -> None:
        """Cross-entropy from logits; Keras casts bfloat16/float16 logits to float32 before reducing."""
        import keras

        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=cfg.jit_compile)

    def per_element_loss(self):
        import keras
        import tensorflow as tf

        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
        return lambda y, logits: loss(y, tf.cast(logits, tf.float32))  # (batch, time)


_TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Makes `task` known to every shared command; returns it. A name is registered once."""
    if not getattr(task, "name", None) or not isinstance(getattr(task, "config_class", None), type):
        raise TypeError("a task needs a name and a config_class")
    if task.name in _TASKS and _TASKS[task.name] is not task:
        raise ValueError(f"a task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    """Forgets a task (tests that register one of their own)."""
    _TASKS.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered tasks' names, built-in ones first."""
    return tuple(_TASKS)


def trainable() -> tuple[str, ...]:
    """The names of the tasks `textgen train` trains (`Task.trains`)."""
    return tuple(name for name, task in _TASKS.items() if task.trains)


def get(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; choose one of {', '.join(_TASKS)}") from None


def for_config(config: Any) -> Task:
    """The task whose model config `config` is."""
    for task in _TASKS.values():
        if type(config) is task.config_class:
            return task
    raise TypeError(f"config must be a {' or '.join(t.config_class.__name__ for t in _TASKS.values())} "
                    f"(the model config of a task); got {type(config).__name__}")


from textgen.tasks import charlm as _charlm, sentiment as _sentiment, wordlm as _wordlm  # noqa: E402  (built-in tasks register)
from textgen.tasks import average as _average  # noqa: E402  (extends sentiment: registers after it)

del _charlm, _sentiment, _wordlm, _average
