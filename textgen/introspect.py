"""Look inside a character model: hidden states, gate activations and next-character guesses.

Keras layers return outputs and final states, not gates, so this module re-runs each layer from
the layer's own weights, one character at a time, with its kind's step equations
(`textgen.cell_kinds.CellKind.step`, the same TF code the sampler and the exports run), in float64.
Gate names follow the source documents:

| cell kind      | gates returned                                      | extra state |
| -------------- | --------------------------------------------------- | ----------- |
| simple_rnn     | (none)                                              |             |
| gru            | update Γ_u = 1 − z (Keras keeps `z` of the old state), reset | |
| minimal_gru    | update Γ_u                                          |             |
| lstm           | update (input), forget, output                      | cell c⟨t⟩   |
| peephole_lstm  | update (input), forget, output                      | cell c⟨t⟩   |
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from textgen import cell_kinds
from textgen.cell_kinds import equation_kind
from textgen.models.char_lm import rnn_layers
from textgen.vocab import CharCodec, vocabulary_of

MAX_CHARS = 2000  # longest text traced at once (the app truncates to this and says so)


@dataclasses.dataclass
class LayerTrace:
    """What one recurrent layer did over the text; every array is (time, units)."""

    name: str
    kind: str
    hidden: np.ndarray  # a⟨t⟩, the layer's output
    gates: dict[str, np.ndarray]  # e.g. {"update": ..., "forget": ..., "output": ...}
    cell: np.ndarray | None = None  # c⟨t⟩ for LSTM kinds


@dataclasses.dataclass
class Trace:
    """A character model read over one text."""

    chars: list[str]  # the text's characters, (time,)
    known: list[bool]  # False where the character is outside the vocabulary (read as [UNK])
    layers: list[LayerTrace]
    probs: np.ndarray  # (time, vocab_size) P(next char | text[: t + 1])
    top: list[list[tuple[str, float]]]  # per position, the k most likely next characters
    next_char_prob: np.ndarray  # (time - 1,) probability the model gave the character that came next


@tf.function(reduce_retracing=True)
def _scan(kind: str, x_proj, recurrent, rec_bias, peephole):
    """Runs `kind`'s step over x_proj (time, blocks·units) from zero states.

    Returns (states, gates): per state and per gate a (time, 1, units) tensor.
    """
    spec = cell_kinds.REGISTRY[kind]
    zeros = tf.zeros([1, tf.shape(recurrent)[0]], x_proj.dtype)  # (batch 1, units)

    def step(carry, x_t):  # x_t (1, blocks·units)
        out = spec.step(x_t, list(carry[0]), recurrent, tf.matmul, rec_bias, peephole)
        return tuple(out.states), out.gates

    initial = (tuple(zeros for _ in range(spec.states)), {gate: zeros for gate in spec.gates})
    return tf.scan(step, x_proj[:, None, :], initializer=initial)


def _run_layer(layer: keras.layers.Layer, x: np.ndarray) -> LayerTrace:
    """Runs one layer over x (time, input_dim) from zero states; returns its trace."""
    kind = equation_kind(layer)
    spec = cell_kinds.REGISTRY[kind]
    w = cell_kinds.layer_weights(layer, "float64")
    in_bias, rec_bias = spec.split_bias(w["bias"])
    x_proj = x.astype(np.float64) @ w["kernel"] + in_bias  # input part of every step at once: (time, blocks·units)
    states, gates = _scan(kind, tf.constant(x_proj), tf.constant(w["recurrent_kernel"]),
                          None if rec_bias is None else tf.constant(rec_bias),
                          tf.constant(w["peephole_kernel"]) if spec.peephole else None)
    states = [s.numpy()[:, 0] for s in states]  # (time, 1, units) -> (time, units)
    return LayerTrace(
        name=layer.name, kind=kind, hidden=states[0],
        gates={gate: gates[gate].numpy()[:, 0] for gate in spec.gates},
        cell=states[1] if spec.states > 1 else None,  # c⟨t⟩ of the LSTM kinds
    )


def trace(model: keras.Model, text: str, top_k: int = 5, vocabulary: Sequence[str] | None = None) -> Trace:
    """Reads `text` (at most MAX_CHARS characters) with a character model and records everything.

    Args:
        model: a textgen character model (see `textgen.models.build_char_lm`).
        text: any Unicode text; characters outside the vocabulary are read as `[UNK]`.
        top_k: how many next-character guesses to keep per position.
        vocabulary: the model's vocabulary, if already known (saves a lookup).
    """
    if not text:
        raise ValueError("there is no text to trace")
    if len(text) > MAX_CHARS:
        raise ValueError(f"text is {len(text)} characters; at most {MAX_CHARS} can be traced at once")
    codec = CharCodec(vocabulary if vocabulary is not None else vocabulary_of(model))
    ids = np.array(codec.encode(text))
    x = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)[ids]  # (time, embedding_dim)
    layers = []
    for layer in rnn_layers(model):
        layer_trace = _run_layer(layer, x)
        layers.append(layer_trace)
        x = layer_trace.hidden
    dense = model.get_layer("logits")
    logits = x @ keras.ops.convert_to_numpy(dense.kernel) + keras.ops.convert_to_numpy(dense.bias)  # (time, vocab)
    logits[:, 0] = -np.inf  # [UNK] is never a guess
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1)[:, :top_k]
    top = [[(codec.vocabulary[j - 1], float(probs[t, j])) for j in order[t]] for t in range(len(ids))]
    next_prob = probs[np.arange(len(ids) - 1), ids[1:]] if len(ids) > 1 else np.zeros(0)
    return Trace(
        chars=list(text), known=[i != 0 for i in ids], layers=layers, probs=probs, top=top,
        next_char_prob=next_prob,
    )
