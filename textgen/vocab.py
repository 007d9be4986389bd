"""Character vocabulary as `StringLookup` layers that are saved inside the model.

Id 0 is always `[UNK]`: any character the model never saw (emoji, another script, a control
character) maps to it and never crashes. Ids 1..n are the vocabulary's characters in order, so a
model's logits index `i` means `vocabulary[i - 1]`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import keras
import tensorflow as tf

from textgen.errors import TextgenError

UNK = "[UNK]"
CHAR_TO_ID = "char_to_id"  # layer name inside every character model


class VocabularyError(TextgenError, ValueError):
    """A character vocabulary is empty, has duplicates, or holds something that is not a character."""


def storable(char: str) -> bool:
    """Whether a character can be a vocabulary entry inside a saved StringLookup.

    NUL cannot: Keras passes the vocabulary through a NumPy unicode array, which strips trailing
    NULs, so NUL would silently become "" (and the empty string would get its id). Lone
    surrogates cannot either: they have no UTF-8 encoding. Both read as `[UNK]` instead.
    """
    return char != "\x00" and not "\ud800" <= char <= "\udfff"


def build_vocabulary(text: str | Iterable[str]) -> list[str]:
    """Sorted unique characters of `text` (a string or an iterable of strings).

    Characters that cannot be stored (see `storable`) are left out; the model reads them as `[UNK]`.
    """
    chars: set[str] = set()
    if isinstance(text, str):
        chars.update(text)
    else:
        for piece in text:
            chars.update(piece)
    return sorted(c for c in chars if storable(c))


def select_vocabulary(counts: dict[str, int], max_vocab: int = 0, min_count: int = 1) -> list[str]:
    """The vocabulary from character counts of the training text: characters seen at least
    `min_count` times, the `max_vocab` most frequent of them when `max_vocab` > 0 (ties: the
    lower code point first), sorted. Everything else reads as `[UNK]`.

    With the defaults it equals `build_vocabulary` of the same text.
    """
    kept = [c for c, n in counts.items() if n >= min_count and storable(c)]
    if max_vocab > 0 and len(kept) > max_vocab:
        kept = sorted(kept, key=lambda c: (-counts[c], c))[:max_vocab]
    return sorted(kept)


def check_vocabulary(vocabulary: Sequence[str]) -> list[str]:
    """Returns `vocabulary` as a list after checking it holds distinct, storable single characters.

    Raises:
        VocabularyError: (a ValueError) it is empty, has duplicates, or an entry is not one
            storable character.
    """
    if isinstance(vocabulary, str):
        raise VocabularyError("the character vocabulary must be a list of characters, not one string")
    vocabulary = [str(c) if isinstance(c, str) else c for c in vocabulary]  # np.str_ -> str
    if not vocabulary:
        raise VocabularyError("the character vocabulary is empty")
    bad = [c for c in vocabulary if not isinstance(c, str) or len(c) != 1 or not storable(c)]
    if bad:
        raise VocabularyError(f"vocabulary entries must be single characters other than NUL; got {bad[:5]!r}")
    if len(set(vocabulary)) != len(vocabulary):
        raise VocabularyError("the character vocabulary has duplicate entries")
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
    return [str(c) for c in vocab if c != UNK]  # str, not np.str_: it goes into metadata.json


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
        """One id per character of `text`; characters outside the vocabulary give 0 (`[UNK]`)."""
        return [self._index.get(c, 0) for c in text]

    def decode(self, ids: Iterable[int], unk: str = "\ufffd") -> str:
        """The characters of `ids`; 0 and ids outside the vocabulary become `unk`."""
        return "".join(self.vocabulary[i - 1] if 0 < i <= len(self.vocabulary) else unk for i in ids)
