"""The word-level language model (textgen.tasks.wordlm): the pretraining task for sentiment."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import artifacts, cli
from textgen.config import ConfigError, RNNConfig, WordLMConfig
from textgen.models.word_lm import adapt_vocabulary, build_word_lm, vocabulary_of, word_lookup, words
from textgen.tasks.wordlm import _word_stream
from textgen.transfer import start_from

TEXTS = ["A superb, moving film!", "It's NOT good... at all.", "Good film; good cast", "the end"]


def test_words_get_the_ids_a_sentiment_vectorizer_gives():
    """The language model's ids are TextVectorization's for the same vocabulary, so its embedding
    rows transfer to a sentiment model row for row."""
    vocabulary = adapt_vocabulary(tf.data.Dataset.from_tensor_slices(TEXTS), 8, "lower_and_strip_punctuation")
    assert vocabulary[:2] == ["", "[UNK]"] and len(vocabulary) == 8
    vectorize = keras.layers.TextVectorization(standardize="lower_and_strip_punctuation", vocabulary=vocabulary)
    ours = word_lookup(vocabulary)(words(tf.constant(TEXTS)))  # (batch, None) ragged
    theirs = vectorize(tf.constant(TEXTS))  # (batch, longest) 0-padded
    for row, text in zip(ours.to_list(), theirs.numpy().tolist()):
        assert row == [i for i in text if i != 0]
    assert words(tf.constant(["It's NOT good..."])).to_list() == [[b"its", b"not", b"good"]]
    assert words(tf.constant(["It's NOT good..."]), "lower").to_list() == [[b"it's", b"not", b"good..."]]


def test_the_stream_reads_each_text_forwards_or_backwards():
    texts = tf.data.Dataset.from_tensor_slices(["a b c", "d e"])
    forward = [w.decode() for w in _word_stream(texts, "lower", False).as_numpy_iterator()]
    backward = [w.decode() for w in _word_stream(texts, "lower", True).as_numpy_iterator()]
    assert forward == ["a", "b", "c", "d", "e"] and backward == ["c", "b", "a", "e", "d"]


def test_the_model_round_trips_and_refuses_to_see_the_future(tmp_path):
    vocabulary = ["", "[UNK]", "good", "film"]
    model = build_word_lm(WordLMConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3), vocabulary)
    x = tf.constant([["good", "film", "unseen"]])
    logits = model(x)
    assert logits.shape == (1, 3, 4) and vocabulary_of(model) == vocabulary
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras")(x), logits, rtol=1e-6)
    untied = build_word_lm(WordLMConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, tie_embeddings=False),
                           vocabulary)
    assert untied.get_layer("logits").kernel.shape == (4, 4) and "project" not in [l.name for l in untied.layers]
    # the untied output's bias starts at the log frequencies as the tied one's does (wordlm's init_weights
    # give [None, log_unigram]: None keeps the kernel's initial values)
    kernel, bias = untied.get_layer("logits").kernel.numpy(), np.log([0.1, 0.2, 0.3, 0.4]).astype(np.float32)
    assert start_from(untied, {"logits": [None, bias]}) == ["logits"]
    np.testing.assert_array_equal(untied.get_layer("logits").kernel.numpy(), kernel)
    np.testing.assert_array_equal(untied.get_layer("logits").bias.numpy(), bias)
    assert start_from(untied, {"logits": [None, bias[:3]]}) == []  # a shape that does not fit is not copied
    # tied: the logits are the projected state times the embedding table
    h = model.get_layer("project").output
    probe = keras.Model(model.input, [h, model.output])
    projected, scores = probe(x)
    np.testing.assert_allclose(scores, projected.numpy() @ model.get_layer("embedding").embeddings.numpy().T,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="backward"):
        WordLMConfig(rnn=RNNConfig(bidirectional=True))
    with pytest.raises(ValueError, match='starts with "" and "\\[UNK\\]"'):
        word_lookup(["good"])


@pytest.mark.slow
def test_train_wordlm_on_imdb_never_reads_the_test_reviews(prepared_data_dir, tmp_path, capsys):
    out = tmp_path / "lm"
    argv = ["train", "wordlm", "--dataset", "aclimdb", "--data-dir", str(prepared_data_dir), "--out", str(out),
            "--cell", "gru", "--units", "8", "--embedding-dim", "4", "--max-tokens", "500", "--epochs", "2",
            "--steps-per-epoch", "3", "--validation-steps", "2", "--batch-size", "4", "--seq-len", "20",
            "--seed", "2", "--backward", "--quiet", "--set", "train_limit=300", "--no-test"]
    assert cli.main(argv) == 0
    md = artifacts.load_model_dir(out)
    assert md.task == "wordlm" and md.config.backward and md.config.max_tokens == 500
    splits = md.metadata["dataset"]["splits"]
    assert splits["train"].startswith("train + unsupervised (300 texts") and "test" not in splits["train"]
    assert splits["validation"] == "last 5000 texts of unsupervised"  # 10 % of the 50,000, held out first
    assert len(md.metadata["word_counts"]) == 500 and md.metadata["backward"] is True
    # --no-test: training never read the test reviews (they are scored once, below, by evaluate)
    assert md.metadata["metrics"] == {} and md.metadata["test_scored_by_training"] is False
    # The tied logits' bias started at the log word frequencies (6 steps move it by little): without
    # it such a model saturated its recurrent state into a constant unigram guess.
    counts = np.asarray(md.metadata["word_counts"], np.float64)
    np.testing.assert_allclose(md.model.get_layer("logits").get_weights()[0],
                               np.log((counts + 1) / (counts.sum() + len(counts))), atol=0.05)

    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--data-dir", str(prepared_data_dir), "--split", "test",
                     "--limit", "50", "--json"]) == 0
    printed = capsys.readouterr().out
    test = json.loads(printed)
    assert test["task"] == "wordlm" and 0 < test["words"] < 50 * 1000 and test["loss_nats"] > 0
    assert test["baseline_unigram"]["loss_nats"] > 0
    (tmp_path / "test.json").write_text(printed)
    assert cli.main(["card", str(out), "--command", "textgen " + " ".join(argv), "--evaluation",
                     str(tmp_path / "test.json")]) == 0
    text = (out / "README.md").read_text()
    assert "A word-level language model reading texts backwards" in text
    assert "not read by training (--no-test)" in text and "aclimdb test, re-evaluated" in text
    assert cli.main(["card", str(out), "--check"]) == 0
    from textgen.card import metric_rows  # the app's Models page

    rows = metric_rows(artifacts.load_model_dir(out).metadata)
    assert rows[0]["reader"] == "this model" and rows[0]["words"] == test["words"] and "characters" not in rows[0]
    assert rows[1]["reader"] == "unigram" and rows[1]["loss (nats/word)"] == test["baseline_unigram"]["loss_nats"]
    assert cli.main(["export", str(out), "--out", str(tmp_path / "exported")]) == 0
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(exported.serve(tf.constant([["good", "film"]])),
                               md.model(tf.constant([["good", "film"]])), rtol=1e-5, atol=1e-6)


def test_a_sentiment_model_starts_from_a_language_model(tmp_path):
    from textgen.config import SentimentConfig
    from textgen.models import build_sentiment_model
    from textgen.tasks.sentiment import transfer_source
    from textgen.transfer import start_from

    vocabulary = ["", "[UNK]", "good", "bad", "film"]
    lm_cfg = WordLMConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, max_tokens=50)
    lm = build_word_lm(lm_cfg, vocabulary)
    artifacts.save_model_dir(tmp_path / "lm", lm, lm_cfg, {"dataset": {"name": "aclimdb"}})
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4, bidirectional=True), embedding_dim=3, max_tokens=50,
                          sequence_length=8)
    got_vocabulary, weights, info = transfer_source(str(tmp_path / "lm"), cfg)
    assert got_vocabulary == vocabulary and info["task"] == "wordlm" and info["dataset"] == "aclimdb"
    model = build_sentiment_model(cfg, got_vocabulary)
    assert set(start_from(model, weights)) == {"embedding", "bi_rnn_0"}
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0], lm.get_layer("embedding").get_weights()[0])
    forward = model.get_layer("bi_rnn_0").forward_layer.get_weights()
    for a, b in zip(forward, lm.get_layer("rnn_0").get_weights()):
        np.testing.assert_array_equal(a, b)
    # the word "good" reads as the same embedding row in both models
    ids = model.get_layer("vectorize")(tf.constant(["good film"]))[0, :2].numpy()
    np.testing.assert_array_equal(ids, [2, 4])
    with pytest.raises(ConfigError, match="rnn.units: 4 there, 8 here"):
        transfer_source(str(tmp_path / "lm"), SentimentConfig(rnn=RNNConfig(cell="gru", units=8), embedding_dim=3,
                                                              max_tokens=50))
    # Room for new words (--extend-vocabulary) and emoticons as tokens: the same words, the same rows.
    roomy = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, max_tokens=80,
                            standardize="lower_keep_emoticons")
    got_vocabulary, weights, _ = transfer_source(str(tmp_path / "lm"), roomy)
    assert got_vocabulary == vocabulary and set(weights) == {"embedding", "rnn_0"}
    with pytest.raises(ConfigError, match="max_tokens: 50 there, 40 here"):
        transfer_source(str(tmp_path / "lm"), SentimentConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3,
                                                              max_tokens=40))


def test_the_backward_direction_starts_from_a_backward_language_model(tmp_path):
    from textgen.config import SentimentConfig
    from textgen.models import build_sentiment_model
    from textgen.tasks.sentiment import transfer_source
    from textgen.transfer import start_from

    vocabulary = ["", "[UNK]", "good", "bad", "film"]
    models = {}
    for name, backward in (("fwd", False), ("bwd", True)):
        keras.utils.set_random_seed(1 + backward)
        cfg = WordLMConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, max_tokens=50, backward=backward)
        models[name] = build_word_lm(cfg, vocabulary)
        artifacts.save_model_dir(tmp_path / name, models[name], cfg, {"training_time_s": 100.0 + backward})
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4, bidirectional=True), embedding_dim=3, max_tokens=50,
                          sequence_length=8)
    _, weights, info = transfer_source(str(tmp_path / "fwd"), cfg, str(tmp_path / "bwd"))
    assert info["backward_path"] == str(tmp_path / "bwd")
    # the pretraining times travel to the fine-tuned model's card
    assert (info["training_time_s"], info["backward_training_time_s"]) == (100.0, 101.0)
    model = build_sentiment_model(cfg, vocabulary)
    start_from(model, weights)
    bi = model.get_layer("bi_rnn_0")
    for layer, lm in ((bi.forward_layer, models["fwd"]), (bi.backward_layer, models["bwd"])):
        for a, b in zip(layer.get_weights(), lm.get_layer("rnn_0").get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="not a backward word language model"):
        transfer_source(str(tmp_path / "fwd"), cfg, str(tmp_path / "fwd"))
    with pytest.raises(ConfigError, match="must be a forward language model"):
        transfer_source(str(tmp_path / "bwd"), cfg, str(tmp_path / "bwd"))
    with pytest.raises(ConfigError, match="add --bidirectional"):
        transfer_source(str(tmp_path / "fwd"), SentimentConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3,
                                                               max_tokens=50), str(tmp_path / "bwd"))
    from textgen.config import TrainConfig

    with pytest.raises(ConfigError, match="init_from_backward needs init_from"):
        TrainConfig(init_from_backward=str(tmp_path / "bwd"))


def test_reverse_tokens_keeps_the_padding_on_the_right():
    from textgen.layers import ReverseTokens

    ids = tf.constant([[5, 8, 2, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 4, 4, 7, 9]], tf.int64)
    np.testing.assert_array_equal(ReverseTokens()(ids).numpy(),
                                  [[2, 8, 5, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0], [9, 7, 4, 4, 1]])
    assert ReverseTokens.from_config(ReverseTokens(name="reverse").get_config()).name == "reverse"


def test_a_backward_classifier_reads_the_words_last_first(tmp_path):
    # The same weights in a forward and a backward reader: the backward one on "a b c" is the forward
    # one on "c b a", through the whole model, the compiled predictor (which cuts padding columns)
    # and a .keras round trip.
    from textgen.config import SentimentConfig
    from textgen.inference import SentimentPredictor
    from textgen.models import build_sentiment_model

    vocabulary = ["", "[UNK]", "good", "bad", "film", "not", "at", "all"]
    shape = dict(rnn=RNNConfig(cell="gru", units=5, bidirectional=False), embedding_dim=3, max_tokens=20,
                 sequence_length=12, valence_head=False, pooling="last")
    keras.utils.set_random_seed(3)
    forward = build_sentiment_model(SentimentConfig(**shape), vocabulary)
    backward = build_sentiment_model(SentimentConfig(**shape, backward=True), vocabulary)
    backward.set_weights(forward.get_weights())
    texts = ["good film", "not good at all", "bad", "film not bad film good", ""]
    flipped = [" ".join(reversed(t.split())) for t in texts]
    want = forward(tf.constant(flipped))["polarity"].numpy()[:, 0]
    np.testing.assert_allclose(backward(tf.constant(texts))["polarity"].numpy()[:, 0], want, atol=1e-6)
    np.testing.assert_allclose(SentimentPredictor(backward).scores(texts)["p_positive"], want, atol=1e-5)
    assert not np.allclose(forward(tf.constant(texts))["polarity"].numpy()[:, 0], want, atol=1e-4)
    artifacts.save_model_dir(tmp_path / "bwd", backward, SentimentConfig(**shape, backward=True), {})
    loaded = artifacts.load_model_dir(tmp_path / "bwd")
    np.testing.assert_allclose(loaded.model(tf.constant(texts))["polarity"].numpy()[:, 0], want, atol=1e-6)
    with pytest.raises(ConfigError, match="already reads texts both ways"):
        SentimentConfig(rnn=RNNConfig(bidirectional=True), backward=True)


def test_a_language_model_starts_a_classifier_that_reads_the_same_way(tmp_path):
    from textgen.config import SentimentConfig
    from textgen.tasks.sentiment import transfer_source

    vocabulary = ["", "[UNK]", "good", "bad", "film"]
    for name, backward in (("fwd", False), ("bwd", True)):
        cfg = WordLMConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3, max_tokens=50, backward=backward)
        artifacts.save_model_dir(tmp_path / name, build_word_lm(cfg, vocabulary), cfg, {})
    one_way = dict(rnn=RNNConfig(cell="gru", units=4, bidirectional=False), embedding_dim=3, max_tokens=50)
    _, weights, _ = transfer_source(str(tmp_path / "bwd"), SentimentConfig(**one_way, backward=True))
    assert set(weights) == {"embedding", "rnn_0"}
    with pytest.raises(ConfigError, match="add --backward"):
        transfer_source(str(tmp_path / "bwd"), SentimentConfig(**one_way))
    with pytest.raises(ConfigError, match="drop --backward"):
        transfer_source(str(tmp_path / "fwd"), SentimentConfig(**one_way, backward=True))
    with pytest.raises(ConfigError, match="--init-from-backward"):
        transfer_source(str(tmp_path / "bwd"), SentimentConfig(**{**one_way, "rnn": RNNConfig(cell="gru", units=4,
                                                                                               bidirectional=True)}))
    # the flag: `textgen train sentiment --no-bidirectional --backward`
    model_cfg, _, _ = cli.train_configs(cli.build_parser().parse_args(["train", "sentiment", "--no-bidirectional",
                                                                       "--backward"]))
    assert model_cfg.backward and not model_cfg.rnn.bidirectional
