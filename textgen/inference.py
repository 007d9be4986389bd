"""Sentiment prediction through one compiled call per batch (not `model.predict`).

`model.predict` builds a data pipeline and a step function on every call (tens of ms per review);
here a `tf.function` with input signature (None,) tf.string is traced once and reused:

    texts (batch,) string -> model -> {"polarity": (batch, 1), "valence": (batch, 1)}
    -> per text {"text", "p_positive", "label", "valence"?}

Inside, the strings are vectorised first; then texts of similar length are batched together and
each batch keeps only the word columns its longest text uses, and that numeric part
(ids -> embedding -> RNN -> heads) runs XLA-compiled. With right padding and masking this gives
the whole model's outputs (tests check it) without computing the padding.

Example:
    >>> predictor = load_predictor("saved_models/imdb")
    >>> predictor.predict(["A wonderful film.", "Dull and far too long."])
    [{'text': 'A wonderful film.', 'p_positive': 0.93, 'label': 'positive', 'valence': 2.1}, ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from textgen.errors import TextgenError

BATCH_SIZE = 256  # texts per compiled call; longer lists are split
THRESHOLD = 0.5  # p_positive at or above this is labelled "positive"
MAX_TEXTS_PER_FILE = 1_000_000


class PredictError(TextgenError, ValueError):
    """The input texts or the model directory cannot be used for sentiment prediction."""


def _to_bytes(text: str) -> bytes:
    # A Python str may hold lone surrogates (not encodable as UTF-8): replace them, never crash.
    return text.encode("utf-8", errors="replace")


def _bucket(n: int, cap: int) -> int:
    """Smallest power of two >= n, at most `cap`."""
    return min(cap, 1 << max(0, n - 1).bit_length())


def _split_at_embedding(model: keras.Model):
    """(the `vectorize` layer, a Model from word ids (batch, any length) to the outputs).

    The new graph reuses the model's own layers (Embedding -> recurrent stack -> heads, the chain
    `build_sentiment_model` builds) on an input of any length, so padding columns that no text in a
    batch uses can be cut off: with right padding and masking the outputs are the same.
    Returns (None, None) when the model is not such a chain; it is then called whole.
    """
    try:
        vectorize = model.get_layer("vectorize")
        ids = keras.Input(shape=(None,), dtype="int64", name="ids")
        # a backward reader reverses each row's words first (padding stays right, so cutting still holds)
        reverse = next((layer for layer in model.layers if layer.name == "reverse"), None)
        x = model.get_layer("embedding")(reverse(ids) if reverse else ids)  # (batch, time, embedding_dim), masked
        heads = {}
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer) or layer.name in ("vectorize", "reverse", "embedding"):
                continue
            if layer.name in ("polarity", "valence"):
                heads[layer.name] = layer(x)  # (batch, 1)
            else:
                x = layer(x)  # recurrent layers and dropouts, in graph order
        if set(heads) != set(model.output):
            return None, None
        return vectorize, keras.Model(ids, heads, name="sentiment_numeric")
    except (ValueError, TypeError, AttributeError):
        return None, None


def _as_texts(texts) -> list[str]:
    """`texts` as a list of strings: one string is one text; anything but an iterable of str is refused."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)) or isinstance(texts, dict) or not hasattr(texts, "__iter__"):
        raise PredictError(f"texts must be a string or a list of strings; got {type(texts).__name__}")
    return list(texts)


class SentimentPredictor:
    """Compiled sentiment prediction for one model.

    Args:
        model: a textgen sentiment model (input `text` (batch,) string; outputs dict with
            `polarity` and, optionally, `valence`).
        batch_size: texts per compiled call.
    """

    def __init__(self, model: keras.Model, batch_size: int = BATCH_SIZE):
        if not isinstance(model.output, dict) or "polarity" not in model.output:
            raise PredictError(f"model {model.name!r} has no 'polarity' output: not a textgen sentiment model")
        from textgen.models.average import members_of

        self.model = model
        self.batch_size = batch_size
        self.has_valence = "valence" in model.output
        # An average (textgen.models.average): each member runs on its own cut path, then the mean.
        self._members = [SentimentPredictor(m, batch_size) for m in members_of(model)]
        self._vectorize, self._tail = (None, None) if self._members else _split_at_embedding(model)
        if self._tail is not None:
            # XLA cannot compile string ops, so only the numeric part (ids -> outputs) is jit-compiled;
            # it runs the RNN loop in one XLA program (about 6x lower latency at batch 1 on CPU).
            self._numeric = tf.function(lambda ids: self._tail(ids, training=False), jit_compile=True)
            self._ids = tf.function(self._vectorize, input_signature=[tf.TensorSpec((None,), tf.string)])
        elif not self._members:  # not a chain we can cut: whole-model calls
            self._call = tf.function(self._forward, input_signature=[tf.TensorSpec((None,), tf.string, name="text")])

    def _forward(self, text):
        """text (batch,) string -> {"p_positive": (batch,), "valence": (batch,)?} float32."""
        out = self.model(text, training=False)
        result = {"p_positive": out["polarity"][:, 0]}
        if self.has_valence:
            result["valence"] = out["valence"][:, 0]
        return result

    def scores(self, texts: Sequence[str] | str) -> dict[str, np.ndarray]:
        """Arrays of p_positive (n,) and valence (n,) for `texts`, in order (a single string is one text)."""
        texts = _as_texts(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise PredictError(f"text {i} must be a string; got {type(text).__name__}")
        keys = ["p_positive"] + (["valence"] if self.has_valence else [])
        result = {k: np.zeros((len(texts),), "float32") for k in keys}
        if not texts:
            return result
        if self._members:  # the average's outputs are the mean of its members' (build_average_model)
            each = [member.scores(texts) for member in self._members]
            return {k: np.mean([s[k] for s in each], axis=0).astype("float32") for k in keys}
        if self._tail is None:  # not a chain we can cut: whole-model calls, in order
            for begin in range(0, len(texts), self.batch_size):
                batch = [_to_bytes(t) for t in texts[begin : begin + self.batch_size]]
                out = self._call(tf.constant(batch, tf.string))
                for k in keys:
                    result[k][begin : begin + len(batch)] = out[k].numpy()
            return result
        ids = np.concatenate([
            self._ids(tf.constant([_to_bytes(t) for t in texts[b : b + 1024]], tf.string)).numpy()
            for b in range(0, len(texts), 1024)
        ])  # (n, sequence_length), right-padded with 0
        nonzero = ids != 0
        lengths = np.where(nonzero.any(axis=1), ids.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
        # Texts of similar length share a batch, and each batch keeps only the columns its longest
        # text uses (a power of two): the padding is never computed. Results go back in order.
        order = np.argsort(lengths, kind="stable")
        for begin in range(0, len(texts), self.batch_size):
            rows = order[begin : begin + self.batch_size]
            width = _bucket(max(int(lengths[rows].max()), 1), ids.shape[1])
            batch = np.zeros((_bucket(len(rows), self.batch_size), width), ids.dtype)  # XLA: few shapes
            batch[: len(rows)] = ids[rows, :width]
            out = self._numeric(tf.constant(batch))
            for k, name in (("p_positive", "polarity"), ("valence", "valence")):
                if k in result:
                    result[k][rows] = out[name].numpy()[: len(rows), 0]
        return result

    def predict(self, texts: Sequence[str] | str) -> list[dict]:
        """Per text: {"text", "p_positive", "label", "valence" (when the model has the head)}.

        A single string is one text (one row), never a sequence of characters.
        """
        texts = _as_texts(texts)
        scores = self.scores(texts)
        rows = []
        for i, text in enumerate(texts):
            p = float(scores["p_positive"][i])
            row = {"text": text, "p_positive": p, "label": "positive" if p >= THRESHOLD else "negative"}
            if self.has_valence:
                row["valence"] = float(scores["valence"][i])
            rows.append(row)
        return rows


def load_predictor(model_dir, batch_size: int = BATCH_SIZE) -> SentimentPredictor:
    """A predictor for a sentiment model directory (a character model directory is refused)."""
    from textgen import tasks
    from textgen.artifacts import load_model_dir

    loaded = load_model_dir(model_dir)
    if not tasks.for_config(loaded.config).predicts:
        raise PredictError(f"{model_dir} holds a {loaded.task} model; predict needs a sentiment model")
    return SentimentPredictor(loaded.model, batch_size=batch_size)


def read_texts(path: str, encoding: str = "utf-8") -> list[str]:
    """One text per line of a text file (`-` = standard input); blank lines are skipped.

    The file is decoded strictly (textgen.textfiles): a byte that is not `encoding` text, or a
    binary file, is refused with the byte offset rather than read as replacement characters.
    """
    import sys

    from textgen.textfiles import TextFileError, check_encoding, read_text

    try:
        if path == "-":
            raw = sys.stdin.buffer.read()
            try:
                text = raw.decode(check_encoding(encoding))
            except UnicodeDecodeError as err:
                raise PredictError(f"standard input is not {encoding} text: cannot decode byte "
                                   f"0x{raw[err.start:err.start + 1].hex()} at byte offset {err.start}") from err
            if "\x00" in text:
                raise PredictError("standard input looks like binary data, not text (it holds NUL bytes)")
            text = text.removeprefix("\ufeff")
        else:
            text = read_text(path, encoding)
    except TextFileError as err:
        raise PredictError(str(err)) from err
    texts = [line for line in text.splitlines() if line.strip()]
    if len(texts) > MAX_TEXTS_PER_FILE:
        raise PredictError(f"{path} has {len(texts)} texts; at most {MAX_TEXTS_PER_FILE} per call")
    return texts
