"""Word-level language model (many-to-many), the pretraining model for sentiment.

words (batch, time) string -> `word_to_id` StringLookup -> ids (batch, time) ("" 0, [UNK] 1, then
the vocabulary: exactly the ids a sentiment model's TextVectorization gives with the same
vocabulary, so its embedding rows and recurrent layers transfer) -> Embedding (batch, time,
embedding_dim) -> N stacked RNNs (batch, time, units) -> Dense logits (batch, time, vocab).

Texts become words the way Keras's TextVectorization makes them (`words`): the same standardisation
and whitespace split, so a word the classifier reads is the word the language model learned.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from textgen import standardize as standardize_lib
from textgen.config import WordLMConfig
from textgen.layers import OutputBias, ReversibleEmbedding
from textgen.models.rnn import make_rnn

WORD_TO_ID = "word_to_id"


def words(texts: tf.Tensor, standardize: str = standardize_lib.DEFAULT) -> tf.RaggedTensor:
    """texts (batch,) string -> words (batch, None) ragged string, as TextVectorization splits them."""
    return standardize_lib.words(texts, standardize)


def adapt_vocabulary(texts: tf.data.Dataset, max_tokens: int, standardize: str) -> list[str]:
    """The `max_tokens` most frequent words of `texts` (a dataset of strings) with "" and "[UNK]"
    first: what `TextVectorization.adapt(...).get_vocabulary()` gives."""
    layer = keras.layers.TextVectorization(max_tokens=max_tokens, standardize=standardize_lib.for_layer(standardize),
                                           output_mode="int")
    layer.adapt(texts.batch(1024) if texts.element_spec.shape.rank == 0 else texts)
    return layer.get_vocabulary()


def word_lookup(vocabulary: Sequence[str]) -> keras.layers.StringLookup:
    """words -> ids with "" -> 0 and unknown words -> 1 ([UNK]); `vocabulary` starts with "", "[UNK]"."""
    if list(vocabulary[:2]) != ["", "[UNK]"]:
        raise ValueError('a word vocabulary starts with "" and "[UNK]" (TextVectorization.get_vocabulary())')
    return keras.layers.StringLookup(vocabulary=list(vocabulary[2:]), mask_token="", oov_token="[UNK]",
                                     num_oov_indices=1, name=WORD_TO_ID)


def build_word_lm(config: WordLMConfig, vocabulary: Sequence[str]) -> keras.Model:
    """Builds the language model around `vocabulary` ("" and "[UNK]" first, as `adapt_vocabulary`)."""
    words_in = keras.Input(shape=(None,), dtype="string", name="words")  # (batch, time)
    lookup = word_lookup(vocabulary)
    ids = lookup(words_in)  # (batch, time) int64
    embedding = ReversibleEmbedding(len(vocabulary), config.embedding_dim, name="embedding")
    x = embedding(ids)  # (batch, time, embedding_dim)
    for i in range(config.rnn.layers):
        x = make_rnn(config.rnn.cell, config.rnn.units, return_sequences=True, name=f"rnn_{i}")(x)
        if config.rnn.dropout:
            x = keras.layers.Dropout(config.rnn.dropout, name=f"dropout_{i}")(x)
    if config.tie_embeddings:
        x = keras.layers.Dense(config.embedding_dim, name="project")(x)  # (batch, time, embedding_dim)
        # the table scores the next word: (batch, time, embedding_dim) @ (embedding_dim, vocab)
        logits = OutputBias(name="logits")(embedding(x, reverse=True))  # + b (vocab,): the word frequencies
    else:
        logits = keras.layers.Dense(len(vocabulary), name="logits")(x)  # (batch, time, vocab)
    return keras.Model(words_in, logits, name="word_lm")


def vocabulary_of(model: keras.Model) -> list[str]:
    """The model's vocabulary with "" and "[UNK]" first (the ids its logits are over)."""
    return list(model.get_layer(WORD_TO_ID).get_vocabulary())
