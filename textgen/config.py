"""Typed, frozen configs: one dataclass per concern, strict overrides, JSON beside the model.

Every field has a default and a comment. Unknown keys and wrong types raise `ConfigError`
(the CLI turns it into exit code 2), so a typo never silently trains the wrong model.

Example:
    >>> cfg = CharLMConfig()
    >>> cfg = apply_overrides(cfg, {"cell": "gru", "units": 64})
    >>> save_config(cfg, "run/config.json"); load_config(CharLMConfig, "run/config.json") == cfg
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from typing import Any, TypeVar

from textgen.errors import TextgenError

# Word standardisations (textgen/standardize.py implements them; kept here so configs import no TF).
STANDARDIZE_CHOICES = ("lower_and_strip_punctuation", "lower", "lower_keep_emoticons")

CELL_KINDS = ("simple_rnn", "gru", "lstm", "minimal_gru", "peephole_lstm")

# A run's TrainConfig, written by textgen.train beside the model (read by evaluate, card, average).
TRAIN_CONFIG_FILE = "train_config.json"

T = TypeVar("T")


class ConfigError(TextgenError, ValueError):
    """A config key is unknown, a value has the wrong type, or a value is out of range."""


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def _check_range(name: str, value: float, low: float | None, high: float | None) -> None:
    # NaN compares False with everything, so it would slip through the bounds below.
    if isinstance(value, float) and math.isnan(value):
        raise ConfigError(f"{name} must be a number; got nan")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ConfigError(f"{name} must be in {bounds}; got {value!r}")


def _coerce(cls_name: str, key: str, annotation: Any, value: Any) -> Any:
    """Checks `value` against a field's annotation; nested dataclasses are built recursively."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{cls_name}.{key} must be an object; got {type(value).__name__}")
        return from_dict(annotation, value)
    if origin is typing.Union or origin is types.UnionType:  # Optional[X] or X | None
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(cls_name, key, args[0], value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{cls_name}.{key} must be a list; got {type(value).__name__}")
        (item,) = typing.get_args(annotation)[:1] or (Any,)
        return tuple(_coerce(cls_name, key, item, v) for v in value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{cls_name}.{key} must be true or false; got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{cls_name}.{key} must be an integer; got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{cls_name}.{key} must be a number; got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{cls_name}.{key} must be a string; got {value!r}")
        return value
    return value


def check_types(cfg: Any) -> None:
    """Checks (and normalises, int -> float) the field types of a config built directly.

    `from_dict` checks types too; this makes `RNNConfig(units="8")` a `ConfigError` rather than
    a TypeError from the range checks. Call it first in `__post_init__`.
    """
    hints = typing.get_type_hints(type(cfg))
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        checked = _coerce(type(cfg).__name__, field.name, hints[field.name], value)
        if checked is not value:
            object.__setattr__(cfg, field.name, checked)  # frozen: the one sanctioned write


@dataclasses.dataclass(frozen=True)
class RNNConfig:
    """The recurrent stack shared by both tasks (one switch for the cell kind)."""

    cell: str = "lstm"  # one of CELL_KINDS
    units: int = 256  # hidden size of every recurrent layer
    layers: int = 1  # number of stacked recurrent layers (a deep RNN when > 1)
    dropout: float = 0.0  # dropout on each recurrent layer's *output* (recurrent_dropout stays 0: cuDNN)
    bidirectional: bool = False  # read the sequence both ways (sentiment only)

    def __post_init__(self):
        check_types(self)
        _check_choice("cell", self.cell, CELL_KINDS)
        _check_range("units", self.units, 1, None)
        _check_range("layers", self.layers, 1, 16)
        _check_range("dropout", self.dropout, 0.0, 0.95)


@dataclasses.dataclass(frozen=True)
class CharLMConfig:
    """Character language model: ids -> Embedding -> RNN stack -> Dense logits over the vocabulary."""

    rnn: RNNConfig = RNNConfig()  # the recurrent stack (bidirectional is refused: it sees the future)
    embedding_dim: int = 64  # size of each character embedding

    def __post_init__(self):
        check_types(self)
        _check_range("embedding_dim", self.embedding_dim, 1, None)
        if self.rnn.bidirectional:
            raise ConfigError(
                "a bidirectional character language model would read the characters it must "
                "predict; bidirectional is only for the sentiment model"
            )


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    """Sentiment model: raw text -> TextVectorization -> Embedding -> RNN stack -> two heads."""

    rnn: RNNConfig = RNNConfig(units=64, bidirectional=True)  # the recurrent stack
    max_tokens: int = 20000  # vocabulary size of the word TextVectorization (incl. pad and OOV)
    sequence_length: int = 256  # words kept per text (longer texts are cut, shorter padded right)
    embedding_dim: int = 64  # size of each word embedding
    valence_head: bool = True  # add the linear valence output (trained only where the corpus has it)
    # How text becomes words (textgen/standardize.py): "lower_keep_emoticons" keeps ":)" as a token.
    standardize: str = "lower_and_strip_punctuation"
    # How the last recurrent layer is read: "last" = its final state (the classic many-to-one
    # reading); "max_mean" = max and mean of its outputs over the words (masked), which lets a
    # long review's strongest phrases count wherever they are.
    pooling: str = "last"
    # Tokens per text: 1 = its words; 2 = its words, then its word pairs ("not good"), as fastText
    # reads IMDB. The pairs share the vocabulary (max_tokens) and the sequence (sequence_length).
    ngrams: int = 1
    # Read each text's kept words last first (a backward classifier: the second of ULMFiT's forward +
    # backward pair, started from a backward language model); padding stays on the right.
    backward: bool = False

    def __post_init__(self):
        check_types(self)
        if self.backward and self.rnn.bidirectional:
            raise ConfigError("a bidirectional model already reads texts both ways; backward is for a one-way "
                              "model (--no-bidirectional)")
        _check_choice("pooling", self.pooling, ("last", "max_mean"))
        _check_range("ngrams", self.ngrams, 1, 3)
        _check_range("max_tokens", self.max_tokens, 3, None)
        _check_range("sequence_length", self.sequence_length, 1, None)
        _check_range("embedding_dim", self.embedding_dim, 1, None)
        _check_choice("standardize", self.standardize, STANDARDIZE_CHOICES)


@dataclasses.dataclass(frozen=True)
class WordLMConfig:
    """Word-level language model: words -> Embedding -> RNN stack -> Dense logits over the vocabulary.

    Pretraining for sentiment: its vocabulary, embedding and recurrent layers start a sentiment
    model with the same `max_tokens`, `standardize`, `embedding_dim` and recurrent stack.
    """

    rnn: RNNConfig = RNNConfig(units=256)  # the recurrent stack (bidirectional is refused: it sees the future)
    max_tokens: int = 20000  # vocabulary size incl. "" (padding) and [UNK], as a sentiment model's
    embedding_dim: int = 64  # size of each word embedding
    standardize: str = "lower_and_strip_punctuation"  # how texts become words (TextVectorization's)
    # Read every text backwards (last word first): the second model of a forward + backward pair
    # (ULMFiT averages the two classifiers they start).
    backward: bool = False
    # Next-word logits from the embedding table itself (last RNN -> Dense(embedding_dim) -> h @ Eᵀ)
    # instead of a (units, vocab) Dense: fewer parameters, and on CPU the output layer, which
    # dominates a step (units·vocab multiply-adds per word), shrinks to embedding_dim·vocab.
    tie_embeddings: bool = True

    def __post_init__(self):
        check_types(self)
        _check_range("max_tokens", self.max_tokens, 3, None)
        _check_range("embedding_dim", self.embedding_dim, 1, None)
        _check_choice("standardize", self.standardize, STANDARDIZE_CHOICES)
        if self.rnn.bidirectional:
            raise ConfigError("a bidirectional language model would read the words it must predict; "
                              "train a backward one (backward=true) instead")


EMBEDDING_DTYPES = ("float32", "float16")


@dataclasses.dataclass(frozen=True)
class AverageConfig:
    """An average of sentiment models (`textgen average`): each member reads the raw text its own
    way and P(positive) (and valence, when every member has that head) is the mean of theirs."""

    members: tuple[SentimentConfig, ...] = ()  # each member's own config, in the order of the average
    # Storage of the members' embedding tables: "float16" halves the largest part of the file; the
    # looked-up vectors are cast to float32 before the recurrent layers.
    embedding_dtype: str = "float32"

    def __post_init__(self):
        check_types(self)
        if len(self.members) < 2:
            raise ConfigError(f"an average needs two or more member models; got {len(self.members)}")
        _check_choice("embedding_dtype", self.embedding_dtype, EMBEDDING_DTYPES)


# --------------------------------------------------------------------------------------------
# Strict conversion between plain dicts (JSON, CLI overrides) and the dataclasses.


def from_dict(cls: type[T], data: dict) -> T:
    """Builds `cls` from a dict, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} must be a JSON object; got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)} (known: {', '.join(sorted(fields))})"
        )
    data = dict(data)
    for field in dataclasses.fields(cls):
        # A partial nested object fills its gaps from *this* field's default (SentimentConfig's
        # rnn defaults to 64 bidirectional units), not from the nested class's own defaults.
        default = field.default if field.default is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default) and isinstance(data.get(field.name), dict):
            data[field.name] = {**to_dict(default), **data[field.name]}
    kwargs = {k: _coerce(cls.__name__, k, hints[k], v) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{cls.__name__}: {err}") from err


def to_dict(cfg: Any) -> dict:
    """Plain JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def apply_overrides(cfg: T, overrides: dict[str, Any]) -> T:
    """Returns a copy of `cfg` with dotted-key overrides applied strictly.

    A key may be a field of `cfg` (`embedding_dim`), a dotted path into a nested config
    (`rnn.units`), or a field of exactly one nested config (`units` -> `rnn.units`).
    """
    data = to_dict(cfg)
    nested = {f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(f.type) or
              dataclasses.is_dataclass(typing.get_type_hints(type(cfg))[f.name])}
    for key, value in overrides.items():
        path = key.split(".")
        if len(path) == 1 and path[0] not in data:
            owners = sorted(n for n in nested if path[0] in data[n])
            if len(owners) == 1:
                path = [owners[0], path[0]]
            elif owners:
                choices = ", ".join(f"{n}.{path[0]}" for n in owners)
                raise ConfigError(f"config key {key!r} is ambiguous for {type(cfg).__name__}; use one of {choices}")
        target = data
        for part in path[:-1]:
            if part not in target or not isinstance(target[part], dict):
                raise ConfigError(f"unknown config key {key!r} for {type(cfg).__name__}")
            target = target[part]
        if path[-1] not in target:
            raise ConfigError(f"unknown config key {key!r} for {type(cfg).__name__}")
        target[path[-1]] = value
    return from_dict(type(cfg), data)


def parse_override(text: str) -> tuple[str, Any]:
    """Parses a CLI `--set key=value`; the value is JSON when it parses, else a string."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value; got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to a temporary file beside `path`, then renames it over `path` (textgen.atomic)."""
    from textgen.atomic import write_text

    write_text(path, text)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Writes `{"kind": ClassName, "config": {...}}` atomically."""
    payload = {"kind": type(cfg).__name__, "config": to_dict(cfg)}
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


CONFIG_KINDS: dict[str, type] = {c.__name__: c for c in (RNNConfig, CharLMConfig, SentimentConfig, WordLMConfig,
                                                          AverageConfig)}


def register_config(cls: type[T]) -> type[T]:
    """Lets `load_config` find config classes defined in other modules (train, data)."""
    CONFIG_KINDS[cls.__name__] = cls
    return cls


def load_config(path: str | os.PathLike, expected: type | None = None) -> Any:
    """Reads a config written by `save_config`; checks its kind when `expected` is given."""
    with open(path, encoding="utf-8") as f:
        try:
            payload = json.load(f)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(payload, dict) or "kind" not in payload or "config" not in payload:
        raise ConfigError(f"{path} is not a textgen config (needs 'kind' and 'config')")
    cls = CONFIG_KINDS.get(payload["kind"])
    if cls is None:
        raise ConfigError(f"{path}: unknown config kind {payload['kind']!r}")
    if expected is not None and cls is not expected:
        raise ConfigError(f"{path} holds a {cls.__name__}, expected {expected.__name__}")
    return from_dict(cls, payload["config"])


# --------------------------------------------------------------------------------------------
# Training (textgen.train uses it; defined here so the CLI can build its flags without TensorFlow).

SCHEDULES = ("constant", "cosine", "exponential")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (the model itself is a CharLMConfig or SentimentConfig)."""

    epochs: int = 10  # maximum number of epochs (early stopping may end sooner)
    steps_per_epoch: int = 0  # batches per epoch; 0 = one full pass over the training split
    validation_steps: int = 0  # validation batches per epoch (the same first ones each time); 0 = all
    batch_size: int = 64  # global batch size (summed over replicas and workers)
    seq_len: int = 100  # characters (charlm) or words (wordlm) per training window
    learning_rate: float = 1e-3  # Adam's peak learning rate (Keras's Adam default, as in the tutorial)
    schedule: str = "cosine"  # constant | cosine (to 10% of the peak) | exponential (x0.5 per 1/4 of the run)
    clipnorm: float = 1.0  # clip each gradient's norm to this (RNNs' gradients explode); 0 = off
    patience: int = 3  # early stopping: epochs without a better monitored value; 0 = off (best weights still kept)
    # What picks the kept epoch and drives early stopping: "val_loss" (lower is better) or, for
    # sentiment, "val_accuracy" (higher is better: the metric the task is judged by).
    monitor: str = "val_loss"
    seed: int | None = None  # seeds Python, NumPy, TF and the shuffles; None = a random seed, recorded
    deterministic: bool = True  # with a seed: tf.config.experimental.enable_op_determinism()
    precision: str = "float32"  # float32 | mixed_bfloat16 | mixed_float16 (weights stay float32)
    jit_compile: bool = False  # XLA-compile the train step
    strategy: str = "default"  # default | mirrored | multiworker (TF_CONFIG)
    max_vocab: int = 0  # character models: keep the N most frequent training characters, the rest read as [UNK]; 0 = all
    min_count: int = 1  # character models: keep characters seen at least this often in the training split
    sample_chars: int = 0  # character models: characters sampled from the weights after each epoch, into progress.jsonl; 0 = none
    train_limit: int = 0  # use only the first N characters (charlm) / examples (sentiment) of train; 0 = all
    validation_fraction: float = 0.1  # sentiment corpora without a validation split: last fraction of train
    valence_weight: float = 1.0  # weight of the valence head's Huber loss (sentiment)
    tensorboard: bool = True  # write TensorBoard logs to DIR/logs
    # Sentiment transfer: a textgen sentiment model directory whose vocabulary and weights (embedding,
    # recurrent layers, heads of the same shape) start this run instead of a fresh vocabulary and
    # random weights. "" = train from scratch.
    init_from: str = ""
    # Fine-tuning (ULMFiT, Howard & Ruder 2018), for a model started with init_from. The layers are
    # grouped from the top (heads, last recurrent layer, ..., first recurrent layer, embedding):
    # discriminative: each group down learns at the rate of the one above divided by this (ULMFiT:
    # 2.6); 1 = one rate for all. unfreeze: gradual unfreezing, one more group every this many
    # epochs, from the top (ULMFiT: 1); 0 = every group trains from the first epoch.
    discriminative: float = 1.0
    unfreeze: int = 0
    # With init_from: add up to this many tokens of this corpus's training split that the source's
    # vocabulary lacks (most frequent first; a tweet corpus's words after IMDB's), their embedding
    # rows starting at the mean of the source's rows; the model's max_tokens must hold them. 0 = keep
    # the source's vocabulary (new words read as [UNK]).
    extend_vocabulary: int = 0
    # With init_from a forward word language model and a bidirectional sentiment model: a backward
    # one (`train wordlm --backward`, same vocabulary) whose recurrent layers start the backward
    # direction, which reads the words in the order it learned them. "" = both directions from init_from.
    init_from_backward: str = ""
    # Score the test split when training ends (metadata.json "metrics"). False for the variants of a
    # model search: they are compared on validation only, and the one kept is scored once afterwards
    # with `textgen evaluate` (its card says so).
    score_test: bool = True
    # Sentiment: adversarial training on the embedded words (Miyato et al. 2017, textgen.adversarial):
    # each step also trains on the batch moved by this L2 radius per text, the way that raises the
    # loss most. 0 = off. Costs a second forward and backward pass per step.
    adversarial: float = 0.0

    def __post_init__(self):
        _check_range("epochs", self.epochs, 1, None)
        _check_range("steps_per_epoch", self.steps_per_epoch, 0, None)
        _check_range("validation_steps", self.validation_steps, 0, None)
        _check_range("batch_size", self.batch_size, 1, None)
        _check_range("seq_len", self.seq_len, 1, None)
        _check_range("learning_rate", self.learning_rate, 0.0, None)
        if self.learning_rate == 0:
            raise ConfigError("learning_rate must be > 0 (0 would train nothing); got 0")
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_range("clipnorm", self.clipnorm, 0.0, None)
        _check_range("patience", self.patience, 0, None)
        _check_choice("monitor", self.monitor, ("val_loss", "val_accuracy"))
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_range("max_vocab", self.max_vocab, 0, None)
        _check_range("min_count", self.min_count, 1, None)
        _check_range("sample_chars", self.sample_chars, 0, 10_000)
        _check_range("train_limit", self.train_limit, 0, None)
        _check_range("validation_fraction", self.validation_fraction, 0.0, 0.9)
        _check_range("valence_weight", self.valence_weight, 0.0, None)
        _check_range("discriminative", self.discriminative, 1.0, 100.0)
        _check_range("unfreeze", self.unfreeze, 0, None)
        _check_range("extend_vocabulary", self.extend_vocabulary, 0, None)
        _check_range("adversarial", self.adversarial, 0.0, 100.0)
        if self.init_from_backward and not self.init_from:
            raise ConfigError("init_from_backward needs init_from (the forward language model)")
        if self.seed is not None:
            _check_range("seed", self.seed, 0, 2**31 - 1)


register_config(TrainConfig)
