"""Character language model (many-to-many, Tx = Ty) and its step form for generation.

Training graph:  chars (batch, time) string -> `char_to_id` StringLookup -> ids (batch, time)
-> Embedding (batch, time, embedding_dim) -> N stacked RNNs (batch, time, units)
-> Dense `logits` (batch, time, vocab_size). The vocabulary lives in `char_to_id`, so a saved
model encodes text on its own and its logits index `i` means `vocabulary[i - 1]` (0 = `[UNK]`).

Step graph (`build_step_model`): ids (batch, time) int32 + states -> logits + new states, sharing
the same layers, so it always sees the trained weights.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from textgen import vocab as vocab_lib
from textgen.config import CharLMConfig
from textgen.models.rnn import make_rnn, state_sizes


def build_char_lm(config: CharLMConfig, vocabulary: Sequence[str]) -> keras.Model:
    """Builds the character language model for `vocabulary` (single characters, no `[UNK]`).

    Example:
        >>> model = build_char_lm(CharLMConfig(), list("abc"))
        >>> model(np.array([["a", "b"]])).shape    # (batch, time, 1 + 3)
        TensorShape([1, 2, 4])
    """
    lookup = vocab_lib.char_to_id_layer(vocabulary)
    vocab_size = lookup.vocabulary_size()  # len(vocabulary) + 1 for [UNK]
    chars = keras.Input(shape=(None,), dtype="string", name="chars")  # (batch, time)
    ids = lookup(chars)  # (batch, time) int64
    x = keras.layers.Embedding(vocab_size, config.embedding_dim, name="embedding")(ids)
    for i in range(config.rnn.layers):
        # return_state=True so the step graph can carry states through the same layer objects.
        rnn = make_rnn(config.rnn.cell, config.rnn.units, return_sequences=True, return_state=True, name=f"rnn_{i}")
        x = rnn(x)[0]  # (batch, time, units)
        if config.rnn.dropout:
            x = keras.layers.Dropout(config.rnn.dropout, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)  # (batch, time, vocab_size)
    return keras.Model(chars, logits, name="char_lm")


def rnn_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The stacked recurrent layers `rnn_0, rnn_1, ...` of a character model, in order."""
    layers = []
    while True:
        try:
            layers.append(model.get_layer(f"rnn_{len(layers)}"))
        except ValueError:
            break
    if not layers:
        raise ValueError(f"model {model.name!r} has no rnn_0 layer: not a textgen character model")
    return layers


def build_step_model(model: keras.Model) -> keras.Model:
    """(ids (batch, time) int32, *states) -> (logits (batch, time, vocab), *new_states).

    States are flat: for each RNN layer in order, its states ([a] or [a, c]), each (batch, units).
    `time` may be any length: the prompt primes in one call, then one character per call.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = model.get_layer("embedding")(ids)
    state_inputs, state_outputs = [], []
    for layer in rnn_layers(model):
        states = [
            keras.Input(shape=(size,), name=f"{layer.name}_state_{j}") for j, size in enumerate(state_sizes(layer))
        ]
        out = layer(x, initial_state=states)
        x, new_states = out[0], list(out[1:])
        state_inputs += states
        state_outputs += new_states
    logits = model.get_layer("logits")(x)
    return keras.Model([ids, *state_inputs], [logits, *state_outputs], name="char_lm_step")


def initial_states(model: keras.Model, batch_size: int) -> list[np.ndarray]:
    """Zero states for `build_step_model(model)`: a list of (batch, units) float32 arrays."""
    return [
        np.zeros((batch_size, size), dtype="float32") for layer in rnn_layers(model) for size in state_sizes(layer)
    ]
