"""Property tests: any Unicode prompt or text, any parameters -> a result or one clear error, never a crash.

Tiny models are built once per module and their compiled functions are reused across examples
(lengths and batches fall into a few power-of-two buckets, so XLA compiles a handful of shapes).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis caches (Unicode tables, constants) would go to ./.hypothesis: keep them out of the cwd.
set_hypothesis_home_dir(os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
                        or Path(tempfile.gettempdir()) / "textgen-hypothesis")

from textgen.config import CharLMConfig, RNNConfig, SentimentConfig
from textgen.inference import PredictError, SentimentPredictor
from textgen.models import adapt_word_vocabulary, build_char_lm, build_sentiment_model
from textgen.sampling import MAX_SEED, Sampler, SamplingError, SamplingParams

VOCAB = list("abcde \n.")
# Hypothesis's default 100 examples a property, new ones each run (no example database). With 200, the
# generate and predict properties took 37 s and 23 s of CPU in a full run.
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Every script, control characters, emoji; surrogates included where Python allows them.
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
long_text = st.builds(lambda s, n: s * n, st.text(max_size=8), st.integers(20, 80))  # up to 640 characters
prompts = st.one_of(any_text, long_text, st.sampled_from(["", "\n", "\x00", "abc", "\ud800"]))


@pytest.fixture(scope="module")
def sampler():
    keras.utils.set_random_seed(7)
    model = build_char_lm(CharLMConfig(rnn=RNNConfig(cell="gru", units=6), embedding_dim=3), VOCAB)
    return Sampler(model, chunk_size=16)


@pytest.fixture(scope="module")
def predictor():
    keras.utils.set_random_seed(7)
    config = SentimentConfig(rnn=RNNConfig(cell="gru", units=4, bidirectional=True), max_tokens=30,
                             sequence_length=12, embedding_dim=3)
    model = build_sentiment_model(config, adapt_word_vocabulary(config, ["good film", "bad plot", "日本 映画"]))
    return SentimentPredictor(model, batch_size=4)


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(
    prompt=prompts,
    length=st.integers(0, 40),
    temperature=st.one_of(st.just(0.0), st.floats(1e-30, 1e-3), st.floats(0.0, 1e38), st.just(3e38)),
    top_k=st.integers(0, 12),
    top_p=st.one_of(st.floats(1e-9, 1.0), st.just(1.0), st.floats(1e-300, 1e-30)),
    penalty=st.one_of(st.floats(0.05, 20), st.just(1.0)),
    num_samples=st.integers(1, 2),
    seed=st.integers(0, MAX_SEED),
)
def test_generate_any_input(sampler, prompt, length, temperature, top_k, top_p, penalty, num_samples, seed):
    """Valid parameters (extremes included) and any prompt: text of the right shape, never [UNK]."""
    params = SamplingParams(length=length, temperature=temperature, top_k=top_k, top_p=top_p,
                            repetition_penalty=penalty, num_samples=num_samples, seed=seed)
    out = sampler.generate(prompt, params)
    assert len(out) == num_samples
    for sample in out:
        assert len(sample) == length
        assert set(sample) <= set(VOCAB)  # [UNK] (decoded as U+FFFD) is never produced
    assert sampler.generate(prompt, params) == out  # same seed, same text
    if temperature == 0:  # greedy ignores the seed and the filters
        assert sampler.generate(prompt, SamplingParams(length=length, num_samples=num_samples,
                                                       temperature=0, repetition_penalty=penalty)) == out


VALID_PARAMS = {
    "length": st.integers(0, 40), "temperature": st.floats(0.0, 1e38), "top_k": st.integers(0, 12),
    "top_p": st.floats(1e-9, 1.0), "repetition_penalty": st.floats(0.05, 20), "num_samples": st.integers(1, 2),
    "seed": st.integers(0, MAX_SEED),
}
INVALID_PARAMS = {
    "length": st.integers(-3, -1) | st.integers(100_001, 10**12) | st.booleans() | st.floats(0, 3),
    "temperature": st.floats(-5, -1e-9) | st.sampled_from([math.nan, math.inf, -math.inf, "hot", None]),
    "top_k": st.integers(-5, -1) | st.floats(0, 3),
    "top_p": st.floats(-1, 0) | st.floats(1.0001, 2) | st.sampled_from([math.nan, math.inf]),
    "repetition_penalty": st.floats(-2, 0) | st.sampled_from([math.nan, math.inf]),
    "num_samples": st.integers(-1, 0) | st.integers(1025, 10**6),
    "seed": st.integers(-(2**70), -1) | st.integers(2**63, 2**70) | st.text(max_size=2),
}


@st.composite
def sampling_args(draw):
    """Valid values for every field, then zero to two fields replaced by invalid ones."""
    args = {name: draw(strategy) for name, strategy in VALID_PARAMS.items()}
    broken = draw(st.sets(st.sampled_from(sorted(INVALID_PARAMS)), max_size=2))
    for name in broken:
        args[name] = draw(INVALID_PARAMS[name])
    return args, broken


@PROPERTY_SETTINGS
@given(case=sampling_args())
def test_generate_parameters_fail_clearly(case):
    """Any parameter values: accepted exactly when valid, else one SamplingError line naming a bad field."""
    args, broken = case
    event("valid" if not broken else "invalid")
    if not broken:
        assert SamplingParams(**args).seed == args["seed"]
        return
    with pytest.raises(SamplingError) as info:
        SamplingParams(**args)
    message = str(info.value)
    assert "\n" not in message and any(message.startswith(name) for name in broken)


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(texts=st.lists(st.one_of(any_text, long_text, st.just("")), max_size=9))
def test_predict_any_texts(predictor, texts):
    rows = predictor.predict(texts)
    assert [r["text"] for r in rows] == texts
    for r in rows:
        assert 0.0 <= r["p_positive"] <= 1.0 and math.isfinite(r["valence"])
        assert r["label"] == ("positive" if r["p_positive"] >= 0.5 else "negative")
    # Batching never changes a text's score.
    if texts:
        alone = predictor.predict(texts[-1:])[0]
        assert alone["p_positive"] == pytest.approx(rows[-1]["p_positive"], abs=1e-6)


@PROPERTY_SETTINGS
@given(items=st.lists(st.one_of(st.integers(), st.none(), st.binary(max_size=4), any_text), min_size=1, max_size=4))
def test_predict_rejects_non_strings_clearly(predictor, items):
    if all(isinstance(x, str) for x in items):
        assert len(predictor.predict(items)) == len(items)
        return
    with pytest.raises(PredictError, match="must be a string"):
        predictor.predict(items)


def test_predict_equals_model_on_hard_texts(predictor):
    texts = ["\x00\x01\x1f", "\u202e\u200b", "a" * 20000, "\U0001f600 " * 300, "ÄÖÜ ß", "\ud800x"]
    rows = predictor.predict(texts)
    safe = [t.encode("utf-8", errors="replace") for t in texts]
    expected = predictor.model(tf.constant(safe))["polarity"].numpy()[:, 0]
    np.testing.assert_allclose([r["p_positive"] for r in rows], expected, atol=1e-6)
