"""Model builders: one file per task; `rnn.py` holds the one cell-kind switch."""

from textgen.models.char_lm import build_char_lm, build_step_model, initial_states, rnn_layers
from textgen.models.rnn import make_rnn, state_count
from textgen.models.sentiment import adapt_word_vocabulary, build_sentiment_model

__all__ = [
    "adapt_word_vocabulary",
    "build_char_lm",
    "build_sentiment_model",
    "build_step_model",
    "initial_states",
    "make_rnn",
    "rnn_layers",
    "state_count",
]
