"""Sentiment prediction through the compiled call: equal to the Keras model, batching, errors, CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import load_bench
from textgen import cli
from textgen.artifacts import save_model_dir
from textgen.config import CharLMConfig, RNNConfig, SentimentConfig
from textgen.inference import PredictError, SentimentPredictor, load_predictor, read_texts
from textgen.models import adapt_word_vocabulary, build_char_lm, build_sentiment_model

CORPUS = ["a wonderful film with great acting", "dull boring and far too long", "the plot was awful",
          "I loved every minute of it", "not good, not bad"]
TEXTS = ["a wonderful film", "", "AWFUL!!! plot", "日本語のレビュー 😀", "x" * 5000, "good " * 400,
         "\x00\x07\t\n"]


def tiny_sentiment(valence: bool = True, cell: str = "lstm", pooling: str = "last") -> tuple[keras.Model, SentimentConfig]:
    keras.utils.set_random_seed(1)
    config = SentimentConfig(rnn=RNNConfig(cell=cell, units=6, bidirectional=True), max_tokens=40,
                             sequence_length=16, embedding_dim=5, valence_head=valence, pooling=pooling)
    return build_sentiment_model(config, adapt_word_vocabulary(config, CORPUS)), config


@pytest.fixture(scope="module")
def model_and_config():
    return tiny_sentiment()


@pytest.fixture(scope="module")
def predictor(model_and_config):
    return SentimentPredictor(model_and_config[0], batch_size=4)


def test_predictions_equal_the_keras_model(model_and_config, predictor):
    model = model_and_config[0]
    expected = model(tf.constant(TEXTS), training=False)
    rows = predictor.predict(TEXTS)  # 7 texts in batches of 4 (the last one padded)
    assert [r["text"] for r in rows] == TEXTS
    np.testing.assert_allclose([r["p_positive"] for r in rows], expected["polarity"].numpy()[:, 0], atol=1e-6)
    np.testing.assert_allclose([r["valence"] for r in rows], expected["valence"].numpy()[:, 0], atol=1e-5)
    for r in rows:
        assert 0.0 <= r["p_positive"] <= 1.0
        assert r["label"] == ("positive" if r["p_positive"] >= 0.5 else "negative")
    # A text's score does not depend on its batch neighbours or on the batch size.
    alone = [predictor.predict([t])[0]["p_positive"] for t in TEXTS[:3]]
    np.testing.assert_allclose(alone, [r["p_positive"] for r in rows[:3]], atol=1e-6)


def test_empty_list_and_bad_items(predictor):
    assert predictor.predict([]) == []
    with pytest.raises(PredictError, match="text 1 must be a string"):
        predictor.predict(["fine", 3])
    # A lone surrogate cannot be UTF-8 encoded: it is replaced, never a crash.
    assert len(predictor.predict(["bad \ud800 surrogate"])) == 1


def test_model_without_valence_head_and_custom_cell():
    model, _ = tiny_sentiment(valence=False, cell="peephole_lstm")
    rows = SentimentPredictor(model).predict(["great", "awful"])
    assert all(set(r) == {"text", "p_positive", "label"} for r in rows)
    expected = model(tf.constant(["great", "awful"]))["polarity"].numpy()[:, 0]
    np.testing.assert_allclose([r["p_positive"] for r in rows], expected, atol=1e-6)


def test_pooled_model_through_the_cut_padding_path():
    """A max_mean model keeps the cut-at-embedding fast path, and cutting padding changes nothing."""
    model, _ = tiny_sentiment(pooling="max_mean")
    predictor = SentimentPredictor(model, batch_size=4)
    assert predictor._tail is not None and "pool" in [layer.name for layer in predictor._tail.layers]
    expected = model(tf.constant(TEXTS), training=False)
    rows = predictor.predict(TEXTS)
    np.testing.assert_allclose([r["p_positive"] for r in rows], expected["polarity"].numpy()[:, 0], atol=1e-6)
    np.testing.assert_allclose([r["valence"] for r in rows], expected["valence"].numpy()[:, 0], atol=1e-5)


def test_character_model_is_refused(tmp_path):
    config = CharLMConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3)
    save_model_dir(tmp_path / "char", build_char_lm(config, list("ab")), config, {})
    with pytest.raises(PredictError, match="charlm"):
        load_predictor(tmp_path / "char")
    with pytest.raises(PredictError, match="polarity"):
        SentimentPredictor(build_char_lm(config, list("ab")))


def test_read_texts_skips_blank_lines(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_text("first review\n\n   \nsecond – ünïcode\n", encoding="utf-8")
    assert read_texts(str(path)) == ["first review", "second – ünïcode"]
    with pytest.raises(PredictError, match="cannot read"):
        read_texts(str(tmp_path / "missing.txt"))


@pytest.fixture(scope="module")
def sentiment_dir(tmp_path_factory, model_and_config):
    path = tmp_path_factory.mktemp("sent") / "model"
    save_model_dir(path, model_and_config[0], model_and_config[1], {})
    return path


def test_cli_predict(sentiment_dir, model_and_config, tmp_path, capsys):
    file = tmp_path / "in.txt"
    file.write_text("from a file\n", encoding="utf-8")
    assert cli.main(["predict", str(sentiment_dir), "great film", "awful", "--file", str(file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in rows] == ["great film", "awful", "from a file"]
    expected = model_and_config[0](tf.constant(["great film", "awful", "from a file"]))["polarity"].numpy()[:, 0]
    np.testing.assert_allclose([r["p_positive"] for r in rows], expected, atol=1e-6)
    assert cli.main(["predict", str(sentiment_dir), "great film"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[0] in ("positive", "negative") and line.endswith("great film")


def test_cli_predict_errors_exit_2(sentiment_dir, tmp_path, capsys):
    assert cli.main(["predict", str(sentiment_dir)]) == 2
    assert "no texts" in capsys.readouterr().err
    assert cli.main(["predict", str(sentiment_dir), "--file", str(tmp_path / "none.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "absent"), "text"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_other_graphs_are_called_whole():
    """A model that is not textgen's chain (no `vectorize` layer) runs through the whole-model call."""
    text = keras.Input(shape=(), dtype="string")
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6, name="tv")
    vectorize.adapt(CORPUS)
    x = keras.layers.Embedding(20, 3)(vectorize(text))
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(text, {"polarity": keras.layers.Dense(1, activation="sigmoid", name="polarity")(x)})
    predictor = SentimentPredictor(model, batch_size=2)
    assert predictor._tail is None
    rows = predictor.predict(TEXTS)
    expected = model(tf.constant(TEXTS))["polarity"].numpy()[:, 0]
    np.testing.assert_allclose([r["p_positive"] for r in rows], expected, atol=1e-6)


def test_sentiment_benchmark_runs_on_a_model_dir(sentiment_dir, capsys):
    sentiment = load_bench("sentiment")
    assert sentiment.main(["--json", "--model-dir", str(sentiment_dir), "--calls", "3", "--batch", "4"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["latency_b1_p50_ms"] > 0 and result["texts_per_s_b4"] > 0


def test_predict_takes_one_string_as_one_text_and_refuses_other_types(predictor):
    one = predictor.predict("a good film")
    assert len(one) == 1 and one[0]["text"] == "a good film"
    assert one[0]["p_positive"] == predictor.predict(["a good film"])[0]["p_positive"]
    for bad in (None, 3, b"bytes", {"text": "x"}):
        with pytest.raises(PredictError, match="string or a list of strings"):
            predictor.predict(bad)
    with pytest.raises(PredictError, match="text 1 must be a string"):
        predictor.predict(["fine", None])


def test_read_texts_refuses_non_utf8_and_binary_with_the_byte_offset(tmp_path, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("good film\ncaf\u00e9 cr\u00e8me\n".encode("latin-1"))
    with pytest.raises(PredictError, match=r"latin1.txt is not utf-8 text: cannot decode byte 0xe9 at byte offset 13"):
        read_texts(str(latin))
    assert read_texts(str(latin), "latin-1") == ["good film", "café crème"]
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(PredictError, match="binary"):
        read_texts(str(binary))
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffgreat\nbad\n".encode("utf-8"))
    assert read_texts(str(bom)) == ["great", "bad"]  # the byte-order mark is not part of the first text
    with pytest.raises(PredictError, match="unknown --encoding"):
        read_texts(str(bom), "no-such-codec")
    assert cli.main(["predict", str(tmp_path), "--file", str(latin)]) == 2
    err = capsys.readouterr().err
    assert "byte offset 13" in err and "--encoding" in err and len(err.strip().splitlines()) == 1
