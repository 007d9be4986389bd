"""Look inside a character model: hidden states, gate activations and next-character guesses.

Keras layers return outputs and final states, not gates, so this module re-runs each layer's
equations in NumPy from the layer's own weights, one character at a time (the same equations the
tests check against the Keras layers). Gate names follow the source documents:

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

from textgen.models.char_lm import rnn_layers
from textgen.models.rnn import equation_kind
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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _run_layer(layer: keras.layers.Layer, x: np.ndarray) -> LayerTrace:
    """Runs one layer over x (time, input_dim) from zero states; returns its trace."""
    kind = equation_kind(layer)
    cell = layer.cell
    W = keras.ops.convert_to_numpy(cell.kernel).astype(np.float64)
    U = keras.ops.convert_to_numpy(cell.recurrent_kernel).astype(np.float64)
    b = keras.ops.convert_to_numpy(cell.bias).astype(np.float64)
    n = U.shape[0]
    steps = x.shape[0]
    xw = x.astype(np.float64) @ W  # input part of every pre-activation at once: (time, blocks·units)
    a = np.zeros(n)
    c = np.zeros(n)
    hidden = np.zeros((steps, n))
    cells = np.zeros((steps, n)) if kind in ("lstm", "peephole_lstm") else None
    gate_names = {
        "simple_rnn": [], "gru": ["update", "reset"], "minimal_gru": ["update"],
        "lstm": ["update", "forget", "output"], "peephole_lstm": ["update", "forget", "output"],
    }[kind]
    gates = {g: np.zeros((steps, n)) for g in gate_names}
    if kind == "peephole_lstm":
        P = keras.ops.convert_to_numpy(cell.peephole_kernel).astype(np.float64)
    for t in range(steps):
        if kind == "simple_rnn":
            a = np.tanh(xw[t] + a @ U + b)
        elif kind == "gru":
            # reset_after=True: bias is (2, 3·units) = [input bias; recurrent bias], blocks [z, r, h].
            bi, br = b
            xz, xr, xh = np.split(xw[t] + bi, 3)
            rz, rr, rh = np.split(a @ U + br, 3)
            z, r = _sigmoid(xz + rz), _sigmoid(xr + rr)
            candidate = np.tanh(xh + r * rh)
            a = z * a + (1 - z) * candidate
            gates["update"][t], gates["reset"][t] = 1 - z, r
        elif kind == "minimal_gru":
            zu, zc = np.split(xw[t] + a @ U + b, 2)
            u = _sigmoid(zu)
            a = u * np.tanh(zc) + (1 - u) * a
            gates["update"][t] = u
        else:  # lstm, peephole_lstm: blocks [update(input), forget, candidate, output]
            zi, zf, zc, zo = np.split(xw[t] + a @ U + b, 4)
            if kind == "peephole_lstm":
                pi, pf, po = np.split(c @ P, 3)
                zi, zf, zo = zi + pi, zf + pf, zo + po
            i, f, o = _sigmoid(zi), _sigmoid(zf), _sigmoid(zo)
            c = i * np.tanh(zc) + f * c
            a = o * np.tanh(c)
            gates["update"][t], gates["forget"][t], gates["output"][t] = i, f, o
            cells[t] = c
        hidden[t] = a
    return LayerTrace(name=layer.name, kind=kind, hidden=hidden, gates=gates, cell=cells)


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
