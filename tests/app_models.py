"""Tiny model folders for the app tests (AppTest and the real browser)."""

from __future__ import annotations

from pathlib import Path

from textgen.artifacts import save_model_dir
from textgen.config import CharLMConfig, RNNConfig, SentimentConfig
from textgen.models import adapt_word_vocabulary, build_char_lm, build_sentiment_model

CHAR_VOCAB = list("\n !',.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
REVIEWS = [
    "a wonderful moving film with great acting",
    "terrible plot and awful boring dialogue",
    "I loved every minute, brilliant",
    "the worst movie I have seen, a waste",
]


def make_app_models(root: Path) -> Path:
    """Writes a tiny LSTM and a tiny GRU character model and a sentiment model under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for name, cell in (("tiny_lstm", "lstm"), ("tiny_gru", "gru")):
        cfg = CharLMConfig(rnn=RNNConfig(cell=cell, units=16, layers=1), embedding_dim=8)
        model = build_char_lm(cfg, CHAR_VOCAB)
        metrics = {"loss_nats": 4.2, "bits_per_char": 6.06, "characters": 500,  # the shape textgen writes
                   "baseline_unigram": {"loss_nats": 3.3, "bits_per_char": 4.76, "characters": 500}}
        save_model_dir(root / name, model, cfg, {"dataset": {"name": "none (random weights, for tests)"},
                                                 "metrics": metrics})
    scfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=8, bidirectional=True), max_tokens=100, sequence_length=32, embedding_dim=8)
    smodel = build_sentiment_model(scfg, adapt_word_vocabulary(scfg, REVIEWS))
    smetrics = {"model": {"examples": 40, "accuracy": 0.5, "f1": 0.4, "valence": {"examples": 40, "mae": 2.1, "pearson_r": 0.05}},
                "baseline_majority": {"examples": 40, "accuracy": 0.55, "f1": 0.71}}
    save_model_dir(root / "tiny_sentiment", smodel, scfg, {"dataset": {"name": "none (random weights, for tests)"},
                                                           "metrics": smetrics})
    (root / "tiny_sentiment" / "README.md").write_text("# Tiny sentiment\n\nRandom weights, for tests.\n")
    return root
