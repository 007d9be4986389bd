"""Sentiment inference speed through the shipped predict path (`textgen.inference`).

Measures latency p50 at batch 1 (target <= 2 ms) and texts/s at batch 256 (target >= 10,000) of
a representative model: vocabulary 20,000, sequence 256, Embedding 64 -> Bidirectional LSTM 64 ->
polarity + valence heads, adapted on a few hundred synthetic review-like texts (random weights:
speed does not depend on training). With --model-dir, a shipped model is measured instead.
For reference, `model.predict` on one text is measured too.

Usage: python -m bench.sentiment --json   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

WORDS = (
    "the a and of to is in it this that was film movie as with for but on not you his are have one all at "
    "by an be who from so like there her just about out if has what some good more when very up no time "
    "story only even can see well really great bad plot acting characters would best love better made "
    "ever little people could most first never also much way funny boring awful wonderful terrible "
    "beautiful worst excellent waste brilliant dull perfect poor stupid amazing"
).split()


def synthetic_reviews(n: int, rng: np.random.Generator, median_words: float = 174.0) -> list[str]:
    """Review-like texts: IMDB-like lengths (log-normal, median 174 and mean about 230 words) of
    words drawn from a Zipf-ish common list (80%) and made-up rare words (20%)."""
    texts = []
    for _ in range(n):
        length = int(np.clip(rng.lognormal(np.log(median_words), 0.75), 5, 2500))
        n_rare = length // 5
        words = list(rng.choice(WORDS, size=length - n_rare, p=_zipf(len(WORDS))))
        words += [f"w{int(x)}" for x in rng.integers(0, 40_000, size=n_rare)]
        rng.shuffle(words)
        texts.append(" ".join(words) + ".")
    return texts


def _zipf(n: int) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1)
    return p / p.sum()


def representative_model(rng: np.random.Generator):
    import keras

    from textgen.config import RNNConfig, SentimentConfig
    from textgen.models import adapt_word_vocabulary, build_sentiment_model

    keras.utils.set_random_seed(0)
    config = SentimentConfig(rnn=RNNConfig(cell="lstm", units=64, bidirectional=True), max_tokens=20000,
                             sequence_length=256, embedding_dim=64)
    vocabulary = adapt_word_vocabulary(config, synthetic_reviews(400, rng))
    return build_sentiment_model(config, vocabulary)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.sentiment", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
    parser.add_argument("--model-dir", default=None, help="a sentiment model directory (default: a built one)")
    parser.add_argument("--calls", type=int, default=200, help="batch-1 calls timed for the p50 (default 200)")
    parser.add_argument("--batch", type=int, default=256, help="batch of the throughput measurement (default 256)")
    args = parser.parse_args(argv)

    from textgen.inference import SentimentPredictor, load_predictor

    rng = np.random.default_rng(0)
    if args.model_dir:
        predictor = load_predictor(args.model_dir)
        source = args.model_dir
    else:
        predictor = SentimentPredictor(representative_model(rng))
        source = "built: vocabulary 20000, sequence 256, BiLSTM 64, random weights"
    texts = synthetic_reviews(max(args.calls, args.batch * 4), rng)

    for text in texts[: args.calls]:  # warm-up: compiles every (batch, width) shape used below
        predictor.predict([text])
    latencies = []
    for text in texts[: args.calls]:
        start = time.perf_counter()
        predictor.predict([text])
        latencies.append(time.perf_counter() - start)

    big = SentimentPredictor(predictor.model, batch_size=args.batch)
    big.predict(texts[: args.batch * 4])  # warm-up on the same texts
    start = time.perf_counter()
    big.predict(texts[: args.batch * 4])
    throughput = args.batch * 4 / (time.perf_counter() - start)

    model_predict = []
    import tensorflow as tf

    for text in texts[:5]:
        start = time.perf_counter()
        predictor.model.predict(tf.constant([text]), verbose=0)
        model_predict.append(time.perf_counter() - start)

    print(json.dumps({
        "benchmark": "sentiment",
        "model": source,
        "cpu_count": os.cpu_count(),
        "latency_b1_p50_ms": round(1000 * float(np.median(latencies)), 3),
        "latency_b1_p90_ms": round(1000 * float(np.percentile(latencies, 90)), 3),
        f"texts_per_s_b{args.batch}": round(throughput, 1),
        "model_predict_b1_p50_ms": round(1000 * float(np.median(model_predict[1:])), 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
