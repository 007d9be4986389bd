"""Char LM and sentiment model: equations end to end, [UNK], step form, masking, fresh-process load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.equations import cell_weights, run
from textgen.config import CELL_KINDS, CharLMConfig, ConfigError, RNNConfig, SentimentConfig
from textgen.models import (
    adapt_word_vocabulary,
    build_char_lm,
    build_sentiment_model,
    build_step_model,
    initial_states,
    rnn_layers,
    state_count,
)
from textgen.vocab import CharCodec, vocabulary_of

# On Ampere and newer GPUs TensorFlow runs float32 matmuls in TF32 (~1e-3 relative error), which
# would drown the 1e-5 comparisons below; compare true float32 instead. No effect on CPU.
tf.config.experimental.enable_tensor_float_32_execution(False)

VOCAB = list("abcdefgh \n")
TEXT = "ab cd\nefg hag\nbad"
CORPUS = [
    "a good film with a fine cast",
    "a bad film, a dull and boring plot",
    "the plot was good but the cast was bad",
    "fine acting; good fun for all",
    "boring, dull, bad: the worst film",
]


def randomise(model: keras.Model, seed: int) -> None:
    """Moderate random weights everywhere (biases and embedding row 0 included)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])


def char_lm(kind: str, layers: int = 2, seed: int = 0) -> keras.Model:
    model = build_char_lm(CharLMConfig(rnn=RNNConfig(cell=kind, units=6, layers=layers, dropout=0.1),
                                       embedding_dim=5), VOCAB)
    randomise(model, seed)
    return model


def chars(text: str) -> np.ndarray:
    return np.array([list(text)])  # (1, time) single-character strings


# ---------------------------------------------------------------- character language model


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_char_lm_logits_follow_the_equations(kind):
    """Embedding -> two stacked cells -> Dense, recomputed in NumPy from the model's own weights."""
    model = char_lm(kind)
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["chars", "char_to_id", "embedding"] and names[-1] == "logits"
    assert [layer.name for layer in rnn_layers(model)] == ["rnn_0", "rnn_1"]
    logits = np.asarray(model(chars(TEXT)))
    assert logits.shape == (1, len(TEXT), len(VOCAB) + 1)
    table = model.get_layer("embedding").get_weights()[0].astype(np.float64)
    x = table[np.array(CharCodec(VOCAB).encode(TEXT))][None]  # (1, time, embedding_dim)
    for layer in rnn_layers(model):
        x, _ = run(kind, x, cell_weights(layer))  # dropout is off at inference
    kernel, bias = (w.astype(np.float64) for w in model.get_layer("logits").get_weights())
    np.testing.assert_allclose(logits, x @ kernel + bias, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_step_model_priming_then_stepping_equals_full_model(kind):
    model = char_lm(kind, seed=1)
    step = build_step_model(model)
    full = np.asarray(model(chars(TEXT)))[0]  # (time, vocab)
    ids = np.array([CharCodec(VOCAB).encode(TEXT)], dtype="int32")
    states = initial_states(model, batch_size=1)
    assert len(states) == 2 * state_count(kind) and all(s.shape == (1, 6) for s in states)
    prime = 5
    logits, *states = step([ids[:, :prime], *states])  # the prompt in one call
    states = [np.asarray(s) for s in states]  # (1, units) each; Keras refuses mixed numpy/tensor lists
    np.testing.assert_allclose(np.asarray(logits)[0], full[:prime], rtol=0, atol=1e-5)
    for t in range(prime, len(TEXT)):  # then one character per call, carrying the states
        logits, *states = step([ids[:, t : t + 1], *states])
        states = [np.asarray(s) for s in states]
        np.testing.assert_allclose(np.asarray(logits)[0, 0], full[t], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "peephole_lstm", "minimal_gru"])
def test_step_model_batches_independently(kind):
    model = char_lm(kind, layers=1, seed=2)
    step = build_step_model(model)
    texts = ["abcdh", "hhgfe", "a\nb c"]
    ids = np.array([CharCodec(VOCAB).encode(t) for t in texts], dtype="int32")
    logits, *_ = step([ids, *initial_states(model, batch_size=3)])
    for b, text in enumerate(texts):
        np.testing.assert_allclose(np.asarray(logits)[b], np.asarray(model(chars(text)))[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["simple_rnn", "peephole_lstm"])
def test_unknown_characters_read_as_unk_and_never_crash(kind):
    model = char_lm(kind, seed=3)
    unknown = ["😀", "ж", "中", "\x07", "\x00", "", "ab", "[UNK]", "\u0301"]
    known = list("abc")
    out = np.asarray(model(np.array([known + unknown + known])))
    assert np.isfinite(out).all()
    # Every unknown string reads as id 0, so swapping one for another changes nothing.
    same = np.asarray(model(np.array([known + ["?"] * len(unknown) + known])))
    np.testing.assert_allclose(out, same, rtol=0, atol=1e-6)
    ids = np.asarray(model.get_layer("char_to_id")(np.array([unknown])))
    assert ids.tolist() == [[0] * len(unknown)]


def test_vocabulary_travels_with_the_model():
    model = char_lm("gru", layers=1)
    assert vocabulary_of(model) == VOCAB
    assert model.get_layer("char_to_id").vocabulary_size() == len(VOCAB) + 1


def test_bidirectional_language_model_is_refused():
    with pytest.raises(ConfigError, match="bidirectional character language model would read the characters"):
        CharLMConfig(rnn=RNNConfig(bidirectional=True))


def test_rnn_layers_refuses_a_model_without_rnn():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="logits")], name="plain")
    with pytest.raises(ValueError, match="no rnn_0 layer"):
        rnn_layers(plain)


# ---------------------------------------------------------------- sentiment model


def sentiment(kind: str, vocabulary: list[str], *, bidirectional: bool = True, sequence_length: int = 12,
              layers: int = 2, seed: int = 0, valence_head: bool = True, pooling: str = "last",
              standardize: str = "lower_and_strip_punctuation") -> keras.Model:
    cfg = SentimentConfig(rnn=RNNConfig(cell=kind, units=4, layers=layers, bidirectional=bidirectional,
                                        dropout=0.2),
                          max_tokens=50, sequence_length=sequence_length, embedding_dim=3, valence_head=valence_head,
                          pooling=pooling, standardize=standardize)
    model = build_sentiment_model(cfg, vocabulary)
    randomise(model, seed)
    return model


@pytest.fixture(scope="module")
def word_vocabulary() -> list[str]:
    return adapt_word_vocabulary(SentimentConfig(max_tokens=50, sequence_length=12), CORPUS)


def test_adapted_vocabulary(word_vocabulary):
    assert word_vocabulary[:2] == ["", "[UNK]"]
    assert {"good", "bad", "film", "plot"} <= set(word_vocabulary)
    assert "film," not in word_vocabulary  # punctuation is stripped by the standardisation
    assert word_vocabulary.index("a") < word_vocabulary.index("fun")  # most frequent first


@pytest.mark.parametrize("pooling", ["last", "max_mean"])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_sentiment_padding_is_masked(kind, pooling, word_vocabulary):
    """A right-padded batch gives what each text gives alone, and what an unpadded model gives."""
    texts = ["good film", "a dull and boring plot", "fine", "the unseen zebra was good"]
    padded = sentiment(kind, word_vocabulary, seed=4, pooling=pooling)
    ids = np.asarray(padded.get_layer("vectorize")(np.array(texts)))
    assert (ids == 0).sum() > 0 and (ids == 1).sum() == 2  # padding present; two unknown words
    batch = {k: np.asarray(v) for k, v in padded(np.array(texts)).items()}
    assert batch["polarity"].shape == (4, 1) and batch["valence"].shape == (4, 1)
    assert ((batch["polarity"] > 0) & (batch["polarity"] < 1)).all()
    for i, text in enumerate(texts):
        words = len(text.split())
        exact = sentiment(kind, word_vocabulary, sequence_length=words, seed=4, pooling=pooling)  # no padding
        exact.set_weights(padded.get_weights())
        alone = exact(np.array([text]))
        for head in ("polarity", "valence"):
            np.testing.assert_allclose(batch[head][i], np.asarray(alone[head])[0], rtol=0, atol=1e-5)


def test_sentiment_heads_and_shapes(word_vocabulary):
    model = sentiment("gru", word_vocabulary, bidirectional=False, layers=1, valence_head=False)
    out = model(np.array(["good", ""]))
    assert set(out) == {"polarity"} and tuple(out["polarity"].shape) == (2, 1)
    assert model.get_layer("polarity").activation is keras.activations.sigmoid
    model = sentiment("minimal_gru", word_vocabulary, bidirectional=True, layers=1)
    assert set(model.output) == {"polarity", "valence"}
    assert model.get_layer("valence").activation is keras.activations.linear
    assert model.get_layer("polarity").input.shape[-1] == 8  # 2 directions × 4 units
    assert model.get_layer("embedding").mask_zero


def test_max_mean_pooling_reads_every_word(word_vocabulary):
    """Pooled over the words: (batch, 4·units) into the heads; the max and mean are those of the
    bidirectional outputs at the text's words only, and an empty text pools to zeros."""
    model = sentiment("gru", word_vocabulary, layers=1, seed=3, pooling="max_mean")
    assert model.get_layer("polarity").input.shape[-1] == 16  # (max, mean) × 2 directions × 4 units
    texts = np.array(["a dull and boring plot", ""])
    ids = model.get_layer("vectorize")(texts)
    seq = model.get_layer("bi_rnn_0")(model.get_layer("embedding")(ids))  # (2, 12, 8), mask propagated
    pooled = np.asarray(model.get_layer("pool")(seq, mask=np.asarray(ids) != 0))
    words = np.asarray(seq)[0, :5]  # the five words of the first text
    np.testing.assert_allclose(pooled[0], np.concatenate([words.max(0), words.mean(0)]), atol=1e-6)
    np.testing.assert_array_equal(pooled[1], np.zeros(16))


# ---------------------------------------------------------------- save -> load in a fresh process


@pytest.mark.slow
def test_saved_models_load_in_a_fresh_process(tmp_path, word_vocabulary):
    """Every kind × task; built-in-only models load without textgen, custom ones only with it."""
    lm_inputs = [list("abc de\nhh"), list("hgf😀ba\nab")]
    text_inputs = ["good film", "a dull and boring plot with zebras", ""]
    entries = []
    for i, kind in enumerate(CELL_KINDS):
        for task, model, inputs in [
            ("charlm", char_lm(kind, seed=10 + i), lm_inputs),
            ("sentiment", sentiment(kind, word_vocabulary, seed=20 + i), text_inputs),
            ("pooled", sentiment(kind, word_vocabulary, seed=30 + i, pooling="max_mean", layers=1), text_inputs),
        ] + ([("emoticons", sentiment(kind, word_vocabulary + [":)", ":("], seed=40, layers=1,
                                      standardize="lower_keep_emoticons"), ["good film :)", "boring :( zebras", ""])]
             if kind == "gru" else []):  # textgen.standardize's registered function
            path = tmp_path / f"{task}_{kind}.keras"
            model.save(path)
            out = model(np.array(inputs))
            out = {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else {"output": np.asarray(out)}
            np.savez(tmp_path / f"{task}_{kind}.npz", **out)
            custom = kind in ("minimal_gru", "peephole_lstm") or task in ("pooled", "emoticons")  # textgen's
            entries.append({"path": str(path), "custom": custom,
                            "inputs": inputs, "expected": str(tmp_path / f"{task}_{kind}.npz")})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"models": entries}, ensure_ascii=False), encoding="utf-8")
    script = Path(__file__).with_name("load_in_fresh_process.py")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(script), str(manifest)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["textgen_imported_early"] is False
    assert report["custom_failed_without_textgen"] is True
    assert set(report["max_abs_diff"]) == {e["path"] for e in entries}
    for path, diff in report["max_abs_diff"].items():
        assert diff <= 1e-6, (path, diff)


def test_bigram_tokens_follow_the_words_and_round_trip(tmp_path):
    """ngrams=2: the words' ids, then the word pairs' ids; the layer keeps them through .keras."""
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4, bidirectional=True), max_tokens=200,
                          sequence_length=10, embedding_dim=3, ngrams=2, pooling="max_mean")
    vocabulary = adapt_word_vocabulary(cfg, CORPUS)
    assert "good film" in vocabulary and "good" in vocabulary
    model = build_sentiment_model(cfg, vocabulary)
    ids = np.asarray(model.get_layer("vectorize")(np.array(["not good film"])))[0]
    words = [vocabulary[i] for i in ids if i]
    assert words[:3] == [w if w in vocabulary else "[UNK]" for w in ("not", "good", "film")]
    assert words[3:] == [p if p in vocabulary else "[UNK]" for p in ("not good", "good film")]
    model.save(tmp_path / "bigram.keras")
    loaded = keras.models.load_model(tmp_path / "bigram.keras")
    texts = np.array(["a good film", "dull plot, good acting", ""])
    np.testing.assert_allclose(np.asarray(loaded(texts)["polarity"]), np.asarray(model(texts)["polarity"]), atol=1e-6)
