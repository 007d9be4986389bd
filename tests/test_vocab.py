"""Character vocabulary: unknown characters read as [UNK] and never crash; encode/decode identity."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from textgen.errors import TextgenError
from textgen.vocab import (
    UNK,
    CharCodec,
    VocabularyError,
    build_vocabulary,
    char_to_id_layer,
    check_vocabulary,
    id_to_char_layer,
    split_chars,
)

VOCAB = list("ab \n\té😀")  # includes whitespace, an accented letter and an emoji (4 UTF-8 bytes)

EDGE_TEXTS = [
    "",  # empty
    "a",
    "ab ab\n\tb",
    "é😀é",  # multi-byte characters
    "😀" * 5,
    "\n\n",
]
UNKNOWN_TEXTS = [
    "🙂",  # an emoji outside the vocabulary
    "жизнь",  # another script
    "中文",
    "\x00\x07\x1b",  # control characters, NUL included
    "e\u0301",  # a combining accent (two code points)
    "[UNK]",  # the token's spelling is five ordinary characters
    "\ufffd",
]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_codec_encode_decode_identity(text):
    codec = CharCodec(VOCAB)
    ids = codec.encode(text)
    assert len(ids) == len(text) and all(1 <= i <= len(VOCAB) for i in ids)
    assert codec.decode(ids) == text


@pytest.mark.parametrize("text", UNKNOWN_TEXTS)
def test_codec_unknown_characters_are_unk(text):
    codec = CharCodec(VOCAB)
    ids = codec.encode(text)
    assert len(ids) == len(text)
    known = [c in VOCAB for c in text]
    assert [i == 0 for i in ids] == [not k for k in known]
    assert codec.decode(ids) == "".join(c if k else "\ufffd" for c, k in zip(text, known))
    assert codec.decode(ids, unk="?") == "".join(c if k else "?" for c, k in zip(text, known))


def test_codec_ids_follow_the_vocabulary_order():
    codec = CharCodec(VOCAB)
    assert codec.size == len(VOCAB) + 1
    assert codec.encode("".join(VOCAB)) == list(range(1, len(VOCAB) + 1))
    assert codec.decode([0, len(VOCAB) + 1, -1]) == "\ufffd" * 3  # out of range decodes as unknown


@pytest.mark.parametrize("text", EDGE_TEXTS + UNKNOWN_TEXTS)
def test_lookup_layer_agrees_with_codec(text):
    """The in-model StringLookup and the Python codec give the same ids for any text."""
    lookup = char_to_id_layer(VOCAB)
    chars = split_chars(tf.constant([text])).to_tensor(default_value="")  # (1, n_chars)
    ids = np.asarray(lookup(chars))[0].tolist() if text else []
    assert ids == CharCodec(VOCAB).encode(text)
    if text:
        back = id_to_char_layer(VOCAB)(lookup(chars)).numpy()[0]
        assert [c.decode("utf-8") for c in back] == [c if c in VOCAB else UNK for c in text]


def test_lookup_maps_empty_and_multi_character_strings_to_unk():
    lookup = char_to_id_layer(VOCAB)
    assert np.asarray(lookup(tf.constant([["", "ab", "[UNK]", "\x00", "a"]]))).tolist() == [[0, 0, 0, 0, 1]]
    assert lookup.get_vocabulary() == [UNK, *VOCAB]
    assert lookup.vocabulary_size() == len(VOCAB) + 1


def test_split_chars_handles_invalid_utf8():
    chars = split_chars(tf.constant([b"a\xffb", "😀é".encode(), b""]))
    assert chars.to_list() == [[b"a", "\ufffd".encode(), b"b"], ["😀".encode(), "é".encode()], []]


def test_build_vocabulary():
    assert build_vocabulary("banana\n") == ["\n", "a", "b", "n"]
    assert build_vocabulary(["ab", "ba😀", ""]) == ["a", "b", "😀"]
    assert build_vocabulary("") == []
    # NUL and lone surrogates cannot live in a saved StringLookup; they read as [UNK] instead.
    assert build_vocabulary("a\x00b\ud800") == ["a", "b"]


@pytest.mark.parametrize(
    "vocabulary, message",
    [([], "empty"), (["a", "a"], "duplicate"), (["ab"], "single characters"), ([""], "single characters"),
     ([UNK], "single characters"), (["a", 3], "single characters"), (["\x00"], "other than NUL"),
     (["\ud800"], "single characters"), ("abc", "not one string")],
)
def test_check_vocabulary_refuses_bad_vocabularies(vocabulary, message):
    with pytest.raises(VocabularyError, match=message):
        check_vocabulary(vocabulary)
    with pytest.raises(VocabularyError):
        char_to_id_layer(vocabulary)
    with pytest.raises(VocabularyError):
        CharCodec(vocabulary)
    assert issubclass(VocabularyError, TextgenError) and issubclass(VocabularyError, ValueError)


def test_check_vocabulary_returns_plain_strings():
    out = check_vocabulary(np.array(["a", "b"]))
    assert out == ["a", "b"] and all(type(c) is str for c in out)
