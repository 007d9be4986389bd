"""Fine-tuning (textgen.finetune): discriminative learning rates and gradual unfreezing."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen.config import RNNConfig, SentimentConfig, TrainConfig
from textgen.finetune import GroupAdam, GroupSchedule, group_scales, layer_groups
from textgen.models import build_sentiment_model

VOCAB = ["", "[UNK]", "good", "bad", "film", "plot"]


def _model(layers=2, valence=True):
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4, layers=layers, bidirectional=True), embedding_dim=3,
                          sequence_length=6, valence_head=valence)
    return build_sentiment_model(cfg, VOCAB)


def test_groups_run_from_the_heads_down_to_the_embedding():
    assert layer_groups(_model()) == [["polarity", "valence"], ["bi_rnn_1"], ["bi_rnn_0"], ["embedding"]]
    assert layer_groups(_model(layers=1, valence=False)) == [["polarity"], ["bi_rnn_0"], ["embedding"]]


def test_scales_divide_per_group_and_unfreeze_one_group_per_period():
    np.testing.assert_allclose(group_scales(4, 0, 2.6, 0), [1, 1 / 2.6, 1 / 2.6**2, 1 / 2.6**3], rtol=1e-6)
    np.testing.assert_allclose(group_scales(4, 0, 2.6, 1), [1, 0, 0, 0])
    np.testing.assert_allclose(group_scales(4, 1, 2.6, 1), [1, 1 / 2.6, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(group_scales(3, 3, 1.0, 2), [1, 1, 0])  # epochs 0-1: heads; 2-3: + one group
    np.testing.assert_allclose(group_scales(3, 9, 1.0, 1), [1, 1, 1])


def _one_step(scales):
    """Each layer's weight change after one Adam step with these group scales (same start, same batch)."""
    keras.utils.set_random_seed(0)
    model = _model(layers=1, valence=False)
    groups = layer_groups(model)
    opt = GroupAdam({n: g for g, names in enumerate(groups) for n in names}, len(groups), learning_rate=0.01)
    model.compile(optimizer=opt, loss={"polarity": "binary_crossentropy"})
    opt.build(model.trainable_variables)
    opt.scales.assign(scales)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}
    x = tf.constant(["good film", "bad plot", "good plot", "bad film"])
    model.fit(x, {"polarity": tf.constant([[1.0], [0.0], [1.0], [0.0]])}, epochs=1, batch_size=4, verbose=0)
    return {name: [a - b for a, b in zip(model.get_layer(name).get_weights(), ws)] for name, ws in before.items()}


def test_a_frozen_group_stays_still_and_a_slower_one_moves_less():
    """Adam's first step is the learning rate times a direction that does not depend on it, so a
    group's step is exactly its scale times the step it takes at full rate."""
    full = _one_step([1.0, 1.0, 1.0])
    tuned = _one_step([1.0, 0.0, 0.25])  # heads full rate, recurrent layer frozen, embedding a quarter
    assert all(not d.any() for d in tuned["bi_rnn_0"]) and any(d.any() for d in full["bi_rnn_0"])
    for a, b in zip(tuned["polarity"], full["polarity"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    for a, b in zip(tuned["embedding"], full["embedding"]):
        assert b.any()
        np.testing.assert_allclose(a, 0.25 * b, rtol=1e-4, atol=1e-8)  # float32 differences of ~0.04 weights


def test_the_schedule_sets_the_scales_each_epoch():
    model = _model(layers=1, valence=False)
    groups = layer_groups(model)
    model.compile(optimizer=GroupAdam({n: g for g, ns in enumerate(groups) for n in ns}, len(groups)),
                  loss={"polarity": "binary_crossentropy"})
    callback = GroupSchedule(2.0, 1)
    callback.set_model(model)
    callback.on_epoch_begin(0)
    np.testing.assert_allclose(model.optimizer.scales.numpy(), [1, 0, 0])
    callback.on_epoch_begin(5)  # a run resumed at epoch 5
    np.testing.assert_allclose(model.optimizer.scales.numpy(), [1, 0.5, 0.25])


@pytest.mark.slow
def test_gradual_unfreezing_keeps_the_transferred_layers_for_the_first_epoch(prepared_data_dir, tmp_path):
    from textgen import train
    from textgen.artifacts import load_model_dir

    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, max_tokens=300, sequence_length=16,
                          valence_head=False)
    base = TrainConfig(epochs=1, steps_per_epoch=3, validation_steps=1, batch_size=8, seed=3, train_limit=200)
    kw = dict(data_dir=prepared_data_dir, verbose=0, print_fn=lambda s: None)
    train.train("sentiment", "vader_sentiment/movies", tmp_path / "source", cfg, base, **kw)
    tuned = TrainConfig(**{**base.__dict__, "init_from": str(tmp_path / "source"), "unfreeze": 1,
                           "discriminative": 2.6})
    train.train("sentiment", "vader_sentiment/movies", tmp_path / "tuned", cfg, tuned, **kw)
    source, result = load_model_dir(tmp_path / "source").model, load_model_dir(tmp_path / "tuned").model
    for name in ("embedding", "rnn_0"):  # frozen in the only epoch
        for a, b in zip(source.get_layer(name).get_weights(), result.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(source.get_layer("polarity").get_weights()[0], result.get_layer("polarity").get_weights()[0])


def test_a_transfer_adds_the_new_corpus_words_with_mean_rows():
    from textgen.config import ConfigError
    from textgen.tasks.sentiment import extend_vocabulary

    table = np.arange(12, dtype=np.float32).reshape(4, 3)  # "", [UNK], good, film
    source = (["", "[UNK]", "good", "film"], {"embedding": [table], "rnn_0": [np.ones(2)]}, {"path": "p"})
    own = ["", "[UNK]", "lol", "good", ":)", "film", "omg"]  # this corpus, most frequent first
    vocabulary, weights, info = extend_vocabulary(source, own, 2, max_tokens=10)
    assert vocabulary == ["", "[UNK]", "good", "film", "lol", ":)"] and info["words_added"] == 2
    np.testing.assert_array_equal(weights["embedding"][0][:4], table)
    np.testing.assert_array_equal(weights["embedding"][0][4:], [[7.5, 8.5, 9.5]] * 2)  # mean of good and film
    assert weights["rnn_0"] is source[1]["rnn_0"]
    with pytest.raises(ConfigError, match="raise --max-tokens to at least 7"):
        extend_vocabulary(source, own, 5, max_tokens=6)


@pytest.mark.slow
def test_a_movies_model_moves_to_tweets_with_their_words(prepared_data_dir, tmp_path):
    from textgen import train
    from textgen.artifacts import load_model_dir

    kw = dict(data_dir=prepared_data_dir, verbose=0, print_fn=lambda s: None)
    small = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, max_tokens=300, sequence_length=16,
                            valence_head=False)
    base = TrainConfig(epochs=1, steps_per_epoch=3, validation_steps=1, batch_size=8, seed=3, train_limit=200)
    train.train("sentiment", "vader_sentiment/movies", tmp_path / "movies", small, base, **kw)
    # the tweets model keeps emoticons as tokens (the movies model's standardisation dropped them)
    tweets = SentimentConfig(**{**small.__dict__, "max_tokens": 400, "valence_head": True,
                                "standardize": "lower_keep_emoticons"})
    moved = TrainConfig(**{**base.__dict__, "init_from": str(tmp_path / "movies"), "extend_vocabulary": 60,
                           "unfreeze": 1})
    train.train("sentiment", "vader_sentiment/tweets", tmp_path / "tweets", tweets, moved, **kw)
    source, result = load_model_dir(tmp_path / "movies"), load_model_dir(tmp_path / "tweets")
    old = source.model.get_layer("vectorize").get_vocabulary()
    new = result.model.get_layer("vectorize").get_vocabulary()
    assert new[: len(old)] == old and len(new) == len(old) + 60
    assert result.metadata["init_from"]["words_added"] == 60
    assert ":)" in new[len(old):]  # an emoticon is a word now, not [UNK]
    table_old = source.model.get_layer("embedding").get_weights()[0]
    table_new = result.model.get_layer("embedding").get_weights()[0]  # frozen in the only epoch
    np.testing.assert_array_equal(table_new[: len(old)], table_old)
    np.testing.assert_allclose(table_new[len(old):], np.repeat(table_old[2:].mean(0, keepdims=True), 60, 0), rtol=1e-6)
