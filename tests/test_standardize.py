"""Word standardisations (textgen.standardize): the split the word LM uses equals TextVectorization's,
emoticons survive "lower_keep_emoticons", and a model that uses it round-trips through `.keras`."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import standardize
from textgen.config import ConfigError, RNNConfig, SentimentConfig
from textgen.models import build_sentiment_model

TEXTS = ["Great day :( but I <3 you!!", "http://x.co/a :-) xD ;P", "Don't (8) stop :) :)", "(-: hi", "",
         "Loved it.  Really, REALLY loved it :D", "so sad :'( lol =] ^_^"]


@pytest.mark.parametrize("name", standardize.CHOICES)
def test_words_split_as_text_vectorization_does(name):
    layer = keras.layers.TextVectorization(standardize=standardize.for_layer(name))
    layer.adapt(tf.constant(TEXTS))
    index = {w: i for i, w in enumerate(layer.get_vocabulary())}
    ours = [[index[w.decode()] for w in row] for row in standardize.words(tf.constant(TEXTS), name).to_list()]
    theirs = [[i for i in row if i] for row in layer(tf.constant(TEXTS)).numpy().tolist()]
    assert ours == theirs


def test_emoticons_stay_tokens_and_other_punctuation_goes():
    got = standardize.words(tf.constant(TEXTS), "lower_keep_emoticons").to_list()
    assert got[0] == [b"great", b"day", b":(", b"but", b"i", b"<3", b"you"]
    assert got[1] == [b"httpxcoa", b":-)", b"xd", b";p"]  # a URL is not an emoticon
    assert got[2] == [b"dont", b"8", b"stop", b":)", b":)"]  # "(8)" is not one either
    assert got[6] == [b"so", b"sad", b":'(", b"lol", b"=]", b"^_^"]
    # the default drops all of them, as TextVectorization's does
    assert standardize.words(tf.constant(TEXTS[:1]), "lower_and_strip_punctuation").to_list() == [
        [b"great", b"day", b"but", b"i", b"3", b"you"]]


def test_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="standardize must be one of"):
        standardize.for_layer("emoji")
    with pytest.raises(ConfigError, match="standardize must be one of"):
        SentimentConfig(standardize="emoji")


def test_a_model_that_keeps_emoticons_round_trips_through_keras(tmp_path):
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, sequence_length=8,
                          standardize="lower_keep_emoticons")
    model = build_sentiment_model(cfg, ["", "[UNK]", "good", ":)", ":(", "day"])
    texts = tf.constant(["good day :)", "good day :(", "good day"])
    assert model.get_layer("vectorize")(texts).numpy()[:, :3].tolist() == [[2, 5, 3], [2, 5, 4], [2, 5, 0]]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert standardize.name_of(loaded.get_layer("vectorize")._standardize) == "lower_keep_emoticons"
    from textgen.card_load import registered_classes  # the card's "Load it elsewhere" says: import textgen

    assert registered_classes(tmp_path / "m.keras") == ("textgen>lower_keep_emoticons",)
    np.testing.assert_allclose(loaded(texts)["polarity"], model(texts)["polarity"], rtol=1e-6)
