"""Continuous batching (textgen.serving): a request's text is the Sampler's text, whoever shares the batch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from test_sampling import KINDS, random_model
from textgen.config import CharLMConfig, RNNConfig, SentimentConfig
from textgen.inference import PredictError, SentimentPredictor
from textgen.models import build_char_lm, build_sentiment_model
from textgen.models.sentiment import adapt_word_vocabulary
from textgen.sampling import Sampler, SamplingError, SamplingParams
from textgen.serving import BatchedPredictor, BatchedSampler

# Requests that exercise every per-row parameter: empty prompt, a prompt longer than a chunk,
# several samples per request, top-k, top-p, penalty, greedy, an unknown character ([UNK]).
REQUESTS = [
    ("ab", SamplingParams(length=37, temperature=0.9, seed=3)),
    ("", SamplingParams(length=11, temperature=1.2, top_k=3, seed=5, num_samples=2)),
    ("gfedcba abc\n" * 3, SamplingParams(length=23, temperature=0.7, top_p=0.8, repetition_penalty=1.3, seed=7,
                                         num_samples=3)),
    ("cab", SamplingParams(length=9, temperature=0.0, seed=1)),
    ("x€a", SamplingParams(length=16, temperature=1.0, top_k=2, top_p=0.9, seed=2**40 + 5)),
]


def run_concurrently(batcher, requests):
    """Each request from its own thread, all at once -> texts per request, in order."""
    results, errors = {}, []
    barrier = threading.Barrier(len(requests))

    def go(i, prompt, params):
        barrier.wait()
        try:
            results[i] = batcher.generate(prompt, params)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=go, args=(i, p, q)) for i, (p, q) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return [results[i] for i in range(len(requests))]


@pytest.mark.parametrize("kind,jit", [(k, k == "lstm") for k in KINDS])
def test_batched_text_is_the_samplers_text(kind, jit):
    # Plain TF graphs (quick to build) for four kinds; XLA, as served, for the LSTM.
    model = random_model(kind)
    sampler = Sampler(model, jit_compile=jit)
    batcher = BatchedSampler(sampler, max_batch=8, chunk_size=5)
    try:
        got = run_concurrently(batcher, REQUESTS)
    finally:
        batcher.close()
    for (prompt, params), texts in zip(REQUESTS, got):
        assert texts == sampler.generate(prompt, params), (kind, prompt, params)
        assert [len(t) for t in texts] == [params.length] * params.num_samples


def test_rows_never_influence_each_other_and_workers_agree():
    model = random_model("lstm", seed=4)
    sampler = Sampler(model, jit_compile=False)
    probe = ("ab", SamplingParams(length=40, temperature=1.0, seed=11))
    alone = BatchedSampler(sampler, max_batch=8, chunk_size=4)
    crowded = BatchedSampler(sampler, max_batch=8, chunk_size=4, workers=2)
    try:
        text_alone = alone.generate(*probe)
        # The probe among others that start before it, with it and after it, at other settings.
        others = [(p * (i + 1), SamplingParams(length=30 + i, temperature=0.5 + i / 10, top_k=i, seed=i))
                  for i, p in enumerate(["ba", "c", "gg", "", "fed"])]
        got = run_concurrently(crowded, others[:2] + [probe] + others[2:])
    finally:
        alone.close()
        crowded.close()
    assert got[2] == text_alone == sampler.generate(*probe)


def test_requests_arriving_during_a_call_join_the_next_one():
    sampler = Sampler(random_model("gru"), jit_compile=False)
    batcher = BatchedSampler(sampler, max_batch=16, chunk_size=8)
    try:
        batcher.warm_up(16)
        before = batcher.calls
        requests = [batcher.submit("ab", SamplingParams(length=40, temperature=1.0, seed=i)) for i in range(8)]
        texts = []
        for r in requests:
            chunks = []
            while (item := r.out.get(timeout=60)) is not None and isinstance(item, np.ndarray):
                chunks.append(item)
            texts.append(np.concatenate(chunks, axis=1))
        calls = batcher.calls - before
    finally:
        batcher.close()
    assert all(t.shape == (1, 40) for t in texts)
    # One request alone needs ceil((2 + 40) / 8) = 6 calls; eight one at a time would need 48.
    assert calls <= 12, calls


def test_streaming_pieces_and_a_closed_stream_frees_its_rows():
    sampler = Sampler(random_model("simple_rnn"), jit_compile=False)
    batcher = BatchedSampler(sampler, max_batch=4, chunk_size=6)
    try:
        params = SamplingParams(length=50, temperature=1.0, seed=9, num_samples=2)
        pieces = list(batcher.stream("abc", params))
        assert all(len(p) == 2 and len(p[0]) <= 6 for p in pieces)
        assert ["".join(p[i] for p in pieces) for i in range(2)] == sampler.generate("abc", params)

        # A caller that goes away after one chunk: its rows leave the batch, and a request that
        # needs every row of the batch (4 samples) can then run.
        stream = batcher.stream("a", SamplingParams(length=100_000, temperature=1.0, seed=1, num_samples=3))
        next(stream)
        stream.close()
        full = SamplingParams(length=12, temperature=1.0, seed=2, num_samples=4)
        assert batcher.generate("b", full) == sampler.generate("b", full)
        deadline = time.monotonic() + 30
        while batcher._workers[0].load and time.monotonic() < deadline:
            time.sleep(0.05)
        assert batcher._workers[0].load == 0
    finally:
        batcher.close()


def test_bad_requests_and_closing():
    sampler = Sampler(random_model("gru"), jit_compile=False)
    batcher = BatchedSampler(sampler, max_batch=4, chunk_size=4)
    with pytest.raises(SamplingError, match="num_samples must be at most 4"):
        batcher.generate("a", SamplingParams(length=3, num_samples=5))
    with pytest.raises(SamplingError, match="prompt must be a string"):
        batcher.generate(b"a", SamplingParams(length=3))
    with pytest.raises(SamplingError, match="SamplingParams"):
        batcher.generate("a", {"length": 3})
    assert batcher.generate("a", SamplingParams(length=0, num_samples=2)) == ["", ""]
    batcher.close()
    with pytest.raises(SamplingError, match="closed"):
        batcher.generate("a", SamplingParams(length=3))
    with pytest.raises(SamplingError, match="max_batch"):
        BatchedSampler(sampler, max_batch=0)
    with pytest.raises(SamplingError, match="textgen.sampling.Sampler"):
        BatchedSampler(object())


def test_int8_batcher_is_reproducible_and_rows_independent():
    # units 48: the converter leaves tensors under 1,024 elements in float32; these are quantised.
    model = build_char_lm(CharLMConfig(rnn=RNNConfig(cell="gru", units=48), embedding_dim=8), list("abcdefg \n"))
    batcher = BatchedSampler(Sampler(model, precision="int8"), max_batch=4, chunk_size=8)
    try:
        probe = ("ab", SamplingParams(length=30, temperature=1.0, seed=5))
        alone = batcher.generate(*probe)
        got = run_concurrently(batcher, [("ga", SamplingParams(length=20, seed=1)), probe,
                                         ("", SamplingParams(length=25, top_k=3, seed=2, num_samples=2))])
    finally:
        batcher.close()
    assert got[1] == alone and len(alone[0]) == 30
    assert [len(t) for t in got[2]] == [25, 25]


class _GatedPredictor(SentimentPredictor):
    """Its first call waits for `release`, so that the next callers queue up behind it."""

    def __init__(self, model):
        super().__init__(model)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches = []

    def predict(self, texts):
        self.batches.append(len(texts))
        self.entered.set()
        self.release.wait(timeout=60)
        return super().predict(texts)


def test_batched_predictor_joins_waiting_callers():
    config = SentimentConfig(rnn=RNNConfig(cell="gru", units=8), max_tokens=50, sequence_length=12, embedding_dim=8)
    model = build_sentiment_model(config, adapt_word_vocabulary(
        config, ["a good film", "a bad film", "dull plot", "great acting"]))
    gated = _GatedPredictor(model)
    batched = BatchedPredictor(gated)
    direct = SentimentPredictor(model)
    texts = [["a good film"], ["dull plot", "great acting"], ["bad"], ["a great good film", "x"], ["plot"]]
    results = {}

    def ask(i):
        results[i] = batched.predict(texts[i])

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    assert gated.entered.wait(timeout=60)
    rest = [threading.Thread(target=ask, args=(i,)) for i in range(1, len(texts))]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 30
    while len(batched._pending) < len(rest) and time.monotonic() < deadline:
        time.sleep(0.01)
    gated.release.set()
    for t in [first] + rest:
        t.join(timeout=60)
    assert gated.batches == [1, 6]  # the four callers that waited went together
    for i, group in enumerate(texts):
        want = direct.predict(group)
        assert [r["text"] for r in results[i]] == group
        np.testing.assert_allclose([r["p_positive"] for r in results[i]], [r["p_positive"] for r in want], atol=1e-6)
    with pytest.raises(PredictError):
        batched.predict([1, 2])
    assert batched.predict([]) == []
