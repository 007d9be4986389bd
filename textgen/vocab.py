"""Character vocabulary as `StringLookup` layers that are saved inside the model.

Id 0 is always `[UNK]`: any character the model never saw (emoji, another script, a control
character) maps to it and never crashes. Ids 1..n are the vocabulary's characters in order, so a
model's logits index `i` means `vocabulary[i - 1]`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import keras
import tensorflow as tf

UNK = "[UNK]"
CHAR_TO_ID = "char_to_id"  # layer name inside every character model


def build_vocabulary(text: str | Iterable[str]) -> list[str]:
    """Sorted unique characters of `text` (a string or an iterable of strings)."""
    chars: set[str] = set()
    if isinstance(text, str):
        chars.update(text)
    else:
        for piece in text:
            chars.update(piece)
    if UNK in chars:  # cannot happen for single characters; guards multi-char tokens
        chars.discard(UNK)
    return sorted(chars)


def check_vocabulary(vocabulary: Sequence[str]) -> list[str]:
    """Returns `vocabulary` as a list after checking it holds distinct single characters."""
    vocabulary = list(vocabulary)
    if not vocabulary:
        raise ValueError("the character vocabulary is empty")
    bad = [c for c in vocabulary if not isinstance(c, str) or len(c) != 1]
    if bad:
        raise ValueError(f"vocabulary entries must be single characters; got {bad[:5]!r}")
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError("the character vocabulary has duplicate entries")
    return vocabulary


def char_to_id_layer(vocabulary: Sequence[str], name: str = CHAR_TO_ID) -> keras.layers.StringLookup:
    """(batch, time) string characters -> (batch, time) int64 ids; unknown -> 0 (`[UNK]`)."""
    return keras.layers.StringLookup(
        vocabulary=check_vocabulary(vocabulary), mask_token=None, oov_token=UNK, num_oov_indices=1, name=name
    )


def id_to_char_layer(vocabulary: Sequence[str]) -> keras.layers.StringLookup:
    """(batch, time) ids -> (batch, time) characters; id 0 becomes the string `[UNK]`."""
    return keras.layers.StringLookup(
        vocabulary=check_vocabulary(vocabulary), mask_token=None, oov_token=UNK, num_oov_indices=1,
        invert=True, name="id_to_char",
    )


def vocabulary_of(model: keras.Model) -> list[str]:
    """The character vocabulary stored in a character model (without `[UNK]`)."""
    try:
        layer = model.get_layer(CHAR_TO_ID)
    except ValueError as err:
        raise ValueError(f"model {model.name!r} has no {CHAR_TO_ID!r} layer: not a textgen character model") from err
    vocab = layer.get_vocabulary()
    return [c for c in vocab if c != UNK]


def split_chars(text: tf.Tensor) -> tf.Tensor:
    """UTF-8 strings (batch,) -> ragged characters (batch, None); invalid bytes become U+FFFD."""
    return tf.strings.unicode_split(text, "UTF-8", errors="replace", replacement_char=0xFFFD)


class CharCodec:
    """Python-side encode/decode with a model's vocabulary (for tests, the CLI and the app)."""

    def __init__(self, vocabulary: Sequence[str]):
        self.vocabulary = check_vocabulary(vocabulary)
        self._index = {c: i + 1 for i, c in enumerate(self.vocabulary)}

    @property
    def size(self) -> int:
        """Number of ids, including `[UNK]` at 0."""
        return len(self.vocabulary) + 1

    def encode(self, text: str) -> list[int]:
        return [self._index.get(c, 0) for c in text]

    def decode(self, ids: Iterable[int], unk: str = "\ufffd") -> str:
        return "".join(self.vocabulary[i - 1] if 0 < i <= len(self.vocabulary) else unk for i in ids)
