"""Sentiment model (many-to-one): raw strings in, polarity and valence out.

text (batch,) string -> `vectorize` TextVectorization -> word ids (batch, sequence_length) (with
`ngrams=2`: the words' ids, then those of the word pairs), 0 = padding on the right -> [with `backward`:
ReverseTokens, each text's ids last first, padding still on the right] -> Embedding(mask_zero) (batch, seq, embedding_dim) -> [Bidirectional]
RNN stack, the last one read as its final output (batch, units or 2·units) or, with
`pooling="max_mean"`, as the max and mean of its outputs over the unmasked words (batch, 2·units
or 4·units) -> two heads:
`polarity` (batch, 1) sigmoid P(positive), trained with binary cross-entropy, and `valence`
(batch, 1) linear on VADER's −4..4 scale, trained with the Huber loss only where the corpus has
valence.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import keras
import tensorflow as tf

from textgen import standardize as standardize_lib
from textgen.config import SentimentConfig
from textgen.layers import AddPerturbation, MaskedMaxMeanPooling, ReverseTokens
from textgen.models.rnn import make_rnn


def _vectorizer(config: SentimentConfig, vocabulary: Sequence[str] | None = None) -> keras.layers.TextVectorization:
    return keras.layers.TextVectorization(
        max_tokens=config.max_tokens,
        standardize=standardize_lib.for_layer(config.standardize),
        output_mode="int",
        output_sequence_length=config.sequence_length,
        # ngrams=2: the words, then the word pairs (ids (batch, sequence_length) either way)
        ngrams=config.ngrams if config.ngrams > 1 else None,
        vocabulary=list(vocabulary) if vocabulary is not None else None,
        name="vectorize",
    )


def adapt_word_vocabulary(config: SentimentConfig, texts: tf.data.Dataset | Iterable[str]) -> list[str]:
    """Adapts a TextVectorization on `texts` (the training split) and returns its vocabulary.

    The returned list starts with the padding token "" and "[UNK]", as `get_vocabulary()` gives.
    """
    layer = _vectorizer(config)
    if not isinstance(texts, tf.data.Dataset):
        texts = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), dtype=tf.string))
    if texts.element_spec.shape.rank == 0:
        texts = texts.batch(1024)
    layer.adapt(texts)
    return layer.get_vocabulary()


def build_sentiment_model(config: SentimentConfig, vocabulary: Sequence[str], perturbation: bool = False) -> keras.Model:
    """Builds the sentiment model around an adapted word `vocabulary` (see `adapt_word_vocabulary`).

    `perturbation=True`: the training model of adversarial training (`textgen.adversarial`), with a
    second input `r` (batch, sequence_length, embedding_dim) added to the embedded words; its weights
    are the plain model's, in the same order.
    """
    text = keras.Input(shape=(), dtype="string", name="text")  # (batch,)
    vectorize = _vectorizer(config, vocabulary)
    ids = vectorize(text)  # (batch, sequence_length) int64, right-padded with 0
    if config.backward:
        ids = ReverseTokens(name="reverse")(ids)  # each text's words last first, still right-padded
    x = keras.layers.Embedding(vectorize.vocabulary_size(), config.embedding_dim, mask_zero=True, name="embedding")(ids)
    inputs = text
    if perturbation:
        r = keras.Input(shape=(config.sequence_length, config.embedding_dim), name="r")
        x = AddPerturbation(name="perturb")([x, r])  # (batch, seq, embedding_dim), the words' mask kept
        inputs = [text, r]
    rnn_cfg = config.rnn
    pooled = config.pooling == "max_mean"
    for i in range(rnn_cfg.layers):
        last = i == rnn_cfg.layers - 1
        rnn = make_rnn(rnn_cfg.cell, rnn_cfg.units, return_sequences=pooled or not last, name=f"rnn_{i}")
        if rnn_cfg.bidirectional:
            rnn = keras.layers.Bidirectional(rnn, name=f"bi_rnn_{i}")
        x = rnn(x)  # (batch, seq, units·dirs) or, last and not pooled, (batch, units·dirs)
        if last and pooled:
            x = MaskedMaxMeanPooling(name="pool")(x)  # (batch, 2·units·dirs), padding excluded
        if rnn_cfg.dropout:
            x = keras.layers.Dropout(rnn_cfg.dropout, name=f"dropout_{i}")(x)
    outputs = {"polarity": keras.layers.Dense(1, activation="sigmoid", name="polarity")(x)}
    if config.valence_head:
        outputs["valence"] = keras.layers.Dense(1, name="valence")(x)
    return keras.Model(inputs, outputs, name="sentiment")
