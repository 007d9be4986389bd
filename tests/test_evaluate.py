"""Evaluation: the streamed char-LM loss equals the plain full-text loss, hand-checked metrics,
and a tiny sentiment model trained on real VADER movie snippets against its baselines."""

from __future__ import annotations

import dataclasses
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import cli, evaluate, train
from textgen.tasks.sentiment import targets as sentiment_targets
from textgen.artifacts import load_model_dir, save_model_dir
from textgen.config import CharLMConfig, ConfigError, RNNConfig, SentimentConfig
from textgen.models import build_char_lm

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 6


@pytest.fixture(scope="module", params=["gru", "lstm"])
def char_model(request):
    keras.utils.set_random_seed(0)
    model = build_char_lm(CharLMConfig(rnn=RNNConfig(cell=request.param, units=12), embedding_dim=6),
                          sorted(set(TEXT)))
    model.textgen_config = CharLMConfig(rnn=RNNConfig(cell=request.param, units=12), embedding_dim=6)
    return model


def _full_text_loss(model, text: str) -> float:
    """Mean next-character cross-entropy from one call of the training graph on the whole text."""
    chars = np.array([list(text[:-1])])
    logits = model(chars).numpy()[0].astype(np.float64)  # (time, vocab)
    ids = np.array(model.get_layer("char_to_id")(np.array([list(text[1:])])))[0]
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(ids)), ids].mean())


def test_one_stream_equals_the_full_text_loss(char_model):
    result = evaluate.charlm_loss(char_model, TEXT, streams=1, chunk=37)  # chunks must not reset state
    assert result["characters"] == len(TEXT) - 1 and result["streams"] == 1
    assert result["loss_nats"] == pytest.approx(_full_text_loss(char_model, TEXT), rel=1e-5)
    assert result["bits_per_char"] == pytest.approx(result["loss_nats"] / math.log(2))
    assert result["perplexity"] == pytest.approx(math.exp(result["loss_nats"]))


def test_parallel_streams_count_every_character_once(char_model):
    text = TEXT + "~~"  # "~" is outside the vocabulary: [UNK] targets are counted, not dropped
    one = evaluate.charlm_loss(char_model, text, streams=1)
    many = evaluate.charlm_loss(char_model, text, streams=5, burn_in=40)
    assert many["streams"] == 5 and many["characters"] == one["characters"] == len(text) - 1
    assert many["unknown_characters"] == one["unknown_characters"] == 2
    assert many["loss_nats"] == pytest.approx(one["loss_nats"], rel=0.02)


def test_unigram_loss_by_hand():
    # counts a:3 b:1, vocabulary [a, b] + [UNK], add-one: p = (4, 2, 1) / 7 for (a, b, UNK)
    result = evaluate.unigram_loss("xabz", ["a", "b"], {"a": 3, "b": 1})  # predicts a, b, z(UNK)
    expected = -(math.log(4 / 7) + math.log(2 / 7) + math.log(1 / 7)) / 3
    assert result["characters"] == 3 and result["loss_nats"] == pytest.approx(expected)


def test_classification_and_valence_metrics_by_hand():
    m = evaluate.classification_metrics(np.array([0, 0, 1, 1, 1]), np.array([0.1, 0.7, 0.8, 0.4, 0.9]), 0.5)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(3 / 5) and m["f1"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    v = evaluate.valence_metrics(np.array([1.0, np.nan, -1.0, 2.0]), np.array([0.5, 9.0, -1.0, 2.5]))
    assert v["examples"] == 3 and v["mae"] == pytest.approx(1 / 3)
    assert evaluate.valence_metrics(np.array([np.nan, np.nan]), np.array([1.0, 2.0])) is None


def test_missing_valence_gets_weight_zero_and_a_finite_target():
    batch = {"text": tf.constant(["good", "bad"]), "label": tf.constant([1, 0], tf.int64),
             "valence": tf.constant([2.5, np.nan], tf.float32)}
    _, y, w = sentiment_targets(with_valence=True)(batch)
    assert y["valence"].numpy().tolist() == [[2.5], [0.0]]
    assert w["valence"].numpy().tolist() == [1.0, 0.0] and w["polarity"].numpy().tolist() == [1.0, 1.0]
    assert y["polarity"].numpy().tolist() == [[1.0], [0.0]]


def test_evaluate_cli_on_a_text_file(tmp_path, char_model, capsys):
    counts = {c: TEXT.count(c) for c in set(TEXT)}
    save_model_dir(tmp_path / "m", char_model, char_model.textgen_config, {"unigram_counts": counts})
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    assert cli.main(["evaluate", str(tmp_path / "m"), "--text-file", str(tmp_path / "t.txt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "charlm" and out["characters"] == len(TEXT) - 1
    assert out["baseline_unigram"]["characters"] == out["characters"]
    assert cli.main(["evaluate", str(tmp_path / "nope"), "--json"]) == 2


@pytest.fixture(scope="module")
def movies_data_dir(vader_sdist_dir, tmp_path_factory):
    from textgen import data

    data_dir = tmp_path_factory.mktemp("tfds_movies")
    data.prepare("vader_sentiment/movies", data_dir=data_dir, manual_dir=vader_sdist_dir)
    return data_dir


@pytest.mark.slow
def test_sentiment_training_and_baselines(movies_data_dir, vader_sdist_dir, tmp_path, capsys):
    model_cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=16, bidirectional=True), max_tokens=5000,
                                sequence_length=40, embedding_dim=16)
    cfg = train.TrainConfig(epochs=2, batch_size=64, learning_rate=0.005, train_limit=3000, seed=1,
                            deterministic=False)
    out = tmp_path / "sentiment"
    result = train.train("sentiment", "vader_sentiment/movies", out, model_cfg, cfg, data_dir=movies_data_dir,
                         verbose=0, print_fn=lambda s: None)
    m = result.metrics
    assert {"model.keras", "metadata.json", "history.json", "training_curve.png"} <= {p.name for p in out.iterdir()}
    assert "val_valence_loss" in result.history and all(np.isfinite(result.history["val_loss"]))
    assert m["model"]["accuracy"] > m["baseline_majority"]["accuracy"] + 0.1
    assert m["model"]["valence"]["pearson_r"] > 0.3

    argv = ["evaluate", str(out), "--data-dir", str(movies_data_dir), "--limit", "300", "--baselines",
            "--baseline-train-limit", "2000", "--json"]
    assert cli.main(argv) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["split"] == "test" and ev["model"]["examples"] == 300
    for key in ("baseline_majority", "baseline_vader", "baseline_tfidf_logreg"):
        assert ev[key]["examples"] == 300 and 0.0 <= ev[key]["accuracy"] <= 1.0
    assert ev["baseline_vader"]["accuracy"] > 0.55 and ev["baseline_tfidf_logreg"]["accuracy"] > 0.55
    assert ev["baseline_tfidf_logreg"]["train_examples"] == 2000
    assert sum(map(sum, ev["model"]["confusion_matrix"])) == 300
    assert ev["trained_on"] == "vader_sentiment/movies" and "baselines_trained_on" not in ev

    # On a domain it never trained on, with the TF-IDF baseline fit on the model's own training texts:
    # a held-out result the card records (and refuses for the domain it trained on).
    from textgen import card, data

    data.prepare("vader_sentiment/tweets", data_dir=movies_data_dir, manual_dir=vader_sdist_dir)
    argv = ["evaluate", str(out), "--dataset", "vader_sentiment/tweets", "--data-dir", str(movies_data_dir), "--limit",
            "100", "--baselines", "--baseline-train-dataset", "vader_sentiment/movies", "--baseline-train-limit", "500",
            "--json"]
    assert cli.main(argv) == 0
    held = json.loads(capsys.readouterr().out)
    assert held["dataset"] == "vader_sentiment/tweets" and held["baselines_trained_on"] == "vader_sentiment/movies"
    assert held["baseline_tfidf_logreg"]["train_examples"] == 500 and held["model"]["examples"] == 100
    assert "vader_sentiment/tweets:test" in card.record_held_out(out, held)["held_out"]
    with pytest.raises(card.CardError, match="not held out"):
        card.record_held_out(out, ev)


@pytest.mark.slow
def test_transfer_starts_from_the_source_vocabulary_and_weights(movies_data_dir, tmp_path, capsys):
    """--init-from: the source's vocabulary and weights start the run (with learning rate 0 they stay
    exactly; the new valence head is fresh), a pooled model trains, and a shape mismatch is refused."""
    kw = dict(data_dir=movies_data_dir, verbose=0, print_fn=lambda s: None)
    source_cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=8, bidirectional=True), max_tokens=3000,
                                 sequence_length=30, embedding_dim=8, valence_head=False, pooling="max_mean")
    cfg = train.TrainConfig(epochs=1, batch_size=64, learning_rate=0.005, train_limit=1000, seed=1, deterministic=False)
    source = train.train("sentiment", "vader_sentiment/movies", tmp_path / "src", source_cfg, cfg, **kw)
    assert np.isfinite(source.history["val_loss"]).all()

    target_cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=8, bidirectional=True, dropout=0.2), max_tokens=3000,
                                 sequence_length=50, embedding_dim=8, valence_head=True, pooling="max_mean")
    frozen = train.TrainConfig(epochs=1, batch_size=64, learning_rate=1e-12, train_limit=500, seed=2,
                               deterministic=False, init_from=str(tmp_path / "src"))
    train.train("sentiment", "vader_sentiment/movies", tmp_path / "dst", target_cfg, frozen, **kw)
    src, dst = load_model_dir(tmp_path / "src"), load_model_dir(tmp_path / "dst")
    assert dst.model.get_layer("vectorize").get_vocabulary() == src.model.get_layer("vectorize").get_vocabulary()
    np.testing.assert_allclose(dst.model.get_layer("embedding").get_weights()[0],
                               src.model.get_layer("embedding").get_weights()[0], rtol=0, atol=1e-9)
    texts = tf.constant(["a gripping , beautifully acted film", "dull and lifeless", ""])
    np.testing.assert_allclose(dst.model(texts)["polarity"], src.model(texts)["polarity"], atol=1e-6)
    assert set(dst.model.output) == {"polarity", "valence"}
    init = dst.metadata["init_from"]
    assert init["path"] == str(tmp_path / "src") and init["weights_sha256"] == src.metadata["weights_sha256"]
    assert set(init["layers_copied"]) == {"embedding", "bi_rnn_0", "polarity"}

    wrong = dataclasses.replace(target_cfg, embedding_dim=16)
    with pytest.raises(ConfigError, match=r"embedding_dim: 8 there, 16 here"):
        train.train("sentiment", "vader_sentiment/movies", tmp_path / "bad", wrong, frozen, **kw)
    assert not (tmp_path / "bad").exists()
    argv = ["train", "sentiment", "--dataset", "vader_sentiment/movies", "--data-dir", str(movies_data_dir),
            "--init-from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "bad2")]
    assert cli.main(argv) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_validation_of_a_corpus_without_one_is_the_part_training_held_out(prepared_data_dir, tmp_path, capsys):
    # IMDB has no validation split: training holds out the last 10 % of (here the first 200) train
    # reviews, and `evaluate --split validation` reads those same 20, so variants can be compared on
    # validation from the CLI without touching test.
    model_cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), max_tokens=300, sequence_length=16,
                                embedding_dim=3, valence_head=False)
    cfg = train.TrainConfig(epochs=1, batch_size=16, train_limit=200, seed=1, score_test=False)
    out = tmp_path / "imdb"
    result = train.train("sentiment", "aclimdb", out, model_cfg, cfg, data_dir=prepared_data_dir, verbose=0,
                         print_fn=lambda s: None)
    assert load_model_dir(out).metadata["dataset"]["splits"]["validation"] == "last 20 examples of train"
    assert cli.main(["evaluate", str(out), "--split", "validation", "--baselines", "--data-dir", str(prepared_data_dir),
                     "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["model"]["examples"] == 20
    assert ev["model"]["accuracy"] == pytest.approx(result.history["val_accuracy"][-1], abs=1e-6)
    # the baseline learns from the 180 reviews the model trained on, not from the validation ones
    assert ev["baseline_tfidf_logreg"]["train_examples"] == 180

    # bench/average.py: the same 20 reviews, each model's accuracy and that of their mean P(positive).
    import shutil

    from tests.conftest import load_bench
    from textgen.inference import SentimentPredictor

    other = tmp_path / "imdb_other"
    shutil.copytree(out, other)
    md = load_model_dir(other)
    kernel, bias = md.model.get_layer("polarity").get_weights()
    md.model.get_layer("polarity").set_weights([kernel, bias + 0.3])  # leans positive: another model
    save_model_dir(other, md.model, md.config, md.metadata)
    average = load_bench("average")
    assert average.main([str(out), str(other), "--data-dir", str(prepared_data_dir)]) == 0
    got = json.loads(capsys.readouterr().out)
    texts, labels, _ = evaluate._examples("aclimdb", "validation", 0, prepared_data_dir, None, held_out=(0.1, 200))
    p = [SentimentPredictor(load_model_dir(d).model).scores(texts)["p_positive"] for d in (out, other)]
    assert got["examples"] == 20 and got["models"][str(out)] == pytest.approx(ev["model"]["accuracy"])
    assert got["average"] == pytest.approx((((p[0] + p[1]) / 2 > 0.5) == labels).mean())
    assert average.main([str(out)]) == 2 and "two or more" in capsys.readouterr().err
    # Without train_config.json nothing says which reviews were held out: a clear refusal.
    (out / "train_config.json").unlink()
    assert cli.main(["evaluate", str(out), "--split", "validation", "--data-dir", str(prepared_data_dir)]) == 2
    assert "has no validation split" in capsys.readouterr().err
