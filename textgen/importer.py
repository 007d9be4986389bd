"""Import a user's own Keras character model (trained the tutorial's way) as a textgen model directory.

Accepted graph (functional or Sequential, loaded in safe mode):
    ids (batch, time) int -> Embedding -> one or more SimpleRNN | GRU | LSTM (return_sequences,
    all the same kind and size; Dropout between them is allowed) -> Dense (vocab logits).
The vocabulary file lists the characters in id order, as the tutorial's `ids_from_chars` does:
id 0 is `[UNK]` (a leading "[UNK]" entry is dropped), id i is entry i - 1. The weights are copied
into `build_char_lm`'s graph, which holds the vocabulary in its `char_to_id` layer, so the result
works with `generate`, `export` and the app. Anything else raises `ImportModelError`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from textgen import folders
from textgen.config import CharLMConfig, RNNConfig
from textgen.errors import TextgenError
from textgen.vocab import UNK, check_vocabulary

KINDS = {keras.layers.SimpleRNN: "simple_rnn", keras.layers.GRU: "gru", keras.layers.LSTM: "lstm"}
SKIPPED = (keras.layers.InputLayer, keras.layers.Dropout)  # no weights, identity at inference


class ImportModelError(TextgenError, ValueError):
    """The model or its vocabulary cannot be imported."""


def read_vocabulary(path: str | os.PathLike) -> list[str]:
    """Characters in id order (without `[UNK]`) from a JSON list or a one-entry-per-line text file.

    Lines of a text file may use JSON escapes (`\\n`, `\\t`, `\\\\`, `\\u00e9`) so that newline and
    tab can be listed; a line holding a single space is the space character.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ImportModelError(f"cannot read vocabulary file {path}: {err}") from err
    if raw.lstrip().startswith("["):
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ImportModelError(f"{path} is not a valid JSON list: {err}") from err
        if not isinstance(entries, list):
            raise ImportModelError(f"{path} must hold a JSON list of characters")
    else:
        entries = []
        for n, line in enumerate(raw.split("\n"), 1):
            if line == "":
                continue
            try:
                entries.append(json.loads('"' + line.replace('"', '\\"') + '"') if "\\" in line else line)
            except json.JSONDecodeError as err:
                raise ImportModelError(f"{path}:{n}: bad escape in {line!r}") from err
    if entries and entries[0] == UNK:
        entries = entries[1:]
    try:
        return check_vocabulary(entries)
    except ValueError as err:
        raise ImportModelError(f"{path}: {err}") from err


def _layers(model: keras.Model) -> tuple[keras.layers.Layer, list[keras.layers.Layer], keras.layers.Layer]:
    """(embedding, recurrent layers, dense) of a supported graph, in order."""
    layers = [layer for layer in model.layers if not isinstance(layer, SKIPPED)]
    if len(layers) < 3:
        raise ImportModelError("expected Embedding -> SimpleRNN/GRU/LSTM ... -> Dense; the model has too few layers")
    embedding, *rnns, dense = layers
    if not isinstance(embedding, keras.layers.Embedding):
        raise ImportModelError(f"the first layer must be an Embedding; got {type(embedding).__name__}")
    if not isinstance(dense, keras.layers.Dense):
        raise ImportModelError(f"the last layer must be a Dense over the vocabulary; got {type(dense).__name__}")
    for layer in rnns:
        if type(layer) not in KINDS:
            raise ImportModelError(
                f"unsupported layer {layer.name!r} ({type(layer).__name__}); supported: SimpleRNN, GRU, LSTM, Dropout"
            )
        if not layer.return_sequences:
            raise ImportModelError(
                f"layer {layer.name!r} must have return_sequences=True (one prediction per character)"
            )
    if len({type(layer) for layer in rnns}) > 1 or len({layer.units for layer in rnns}) > 1:
        raise ImportModelError("all recurrent layers must be of one kind and size (textgen's config has one of each)")
    if dense.activation not in (keras.activations.linear, None) or not dense.use_bias:
        raise ImportModelError("the Dense layer must output logits (linear activation with bias)")
    return embedding, rnns, dense


def convert(model: keras.Model, vocabulary: list[str]) -> tuple[keras.Model, CharLMConfig]:
    """Builds textgen's char LM for `vocabulary` and copies `model`'s weights into it."""
    from textgen.models import build_char_lm
    from textgen.sampling import SamplingError, cell_kind

    embedding, rnns, dense = _layers(model)
    size = len(vocabulary) + 1  # + [UNK] at id 0
    if embedding.input_dim != size:
        raise ImportModelError(f"vocabulary has {len(vocabulary)} characters + [UNK] = {size} ids, but the "
                               f"Embedding has input_dim {embedding.input_dim}")
    if dense.units != size:
        raise ImportModelError(f"vocabulary has {size} ids (with [UNK]) but the Dense layer has {dense.units} units")
    for layer in rnns:
        try:
            cell_kind(layer)  # the activations the generator implements (GRU: reset_after=True)
        except SamplingError as err:
            raise ImportModelError(str(err)) from err
    config = CharLMConfig(rnn=RNNConfig(cell=KINDS[type(rnns[0])], units=int(rnns[0].units), layers=len(rnns)),
                          embedding_dim=int(embedding.output_dim))
    ours = build_char_lm(config, vocabulary)
    ours.get_layer("embedding").set_weights(embedding.get_weights())
    for i, layer in enumerate(rnns):
        ours.get_layer(f"rnn_{i}").set_weights(layer.get_weights())
    ours.get_layer("logits").set_weights(dense.get_weights())
    return ours, config


def import_char_model(path, vocab_file, out, overwrite: bool = False) -> Path:
    """Imports the `.keras` character model at `path` into the model directory `out`.

    Args:
        path: a `.keras` file (loaded with `keras.models.load_model`, safe mode).
        vocab_file: the vocabulary (see `read_vocabulary`).
        out: model directory to write; must be absent or empty unless `overwrite`, and must not
            overlap `path` or `vocab_file`.
        overwrite: replace a non-empty `out` that textgen wrote (never a folder of the user's); the
            old one stays at `out` until the new one is complete (textgen.folders).
    """
    from textgen.artifacts import MODEL_DIR_ENTRIES, save_model_dir

    for name, value in (("model file", path), ("vocabulary file", vocab_file), ("--out", out)):
        if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ImportModelError(f"{name} must be a path (str or os.PathLike); got {value!r}")
    path = Path(path)
    if not path.is_file():
        raise ImportModelError(f"model file {str(path)!r} does not exist")
    out = folders.check_out(out, [path, vocab_file], overwrite=overwrite, known=MODEL_DIR_ENTRIES,
                            error=ImportModelError)
    vocabulary = read_vocabulary(vocab_file)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # a subclassed model, a lambda layer, a broken file
        raise ImportModelError(f"cannot load {path} in safe mode (save it as a functional or Sequential model): "
                               f"{str(err).splitlines()[0]}") from err
    ours, config = convert(model, vocabulary)
    staged = folders.staging_folder(out)
    try:
        params = int(sum(np.prod(w.shape) for w in model.weights))
        save_model_dir(staged, ours, config, {"imported_from": str(path.resolve()), "source_params": params})
        folders.write_marker(staged, "model", MODEL_DIR_ENTRIES)
        folders.publish(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return out
