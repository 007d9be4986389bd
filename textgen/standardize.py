"""How raw text becomes words: the standardisations a word model (sentiment, word LM) can use.

- "lower_and_strip_punctuation": TextVectorization's default (lowercase, every ASCII punctuation
  character removed): ":)" and ":(" vanish, "don't" reads "dont".
- "lower": lowercase only; punctuation stays glued to its word ("good." and "good" differ).
- "lower_keep_emoticons": as the default, except that a whitespace-separated emoticon (":)",
  ":-(", ";p", "<3", "xd", "=]", ...) stays a token of its own. On tweets an emoticon is often
  the whole sentiment; the default turns "great day :(" into "great day".

The third is a registered Keras function, so a TextVectorization that uses it round-trips through
`.keras` and traces into a SavedModel like the built-in ones. `words` gives the same split as the
layer for every choice (the word LM and the sentiment model must agree, row for row).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen.config import STANDARDIZE_CHOICES

CHOICES = STANDARDIZE_CHOICES
DEFAULT = "lower_and_strip_punctuation"

# TextVectorization's "lower_and_strip_punctuation" (keras/src/layers/preprocessing/text_vectorization.py)
STRIP_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
# A whole token that is an emoticon, after lowercasing (RE2 syntax): eyes, optional nose, mouth, in
# either order (":-)", "(-:"), hearts, and "xd". URLs ("http://x") are not whole-token matches.
EMOTICON = (r"(?:[<>]?[:;=8][\-o\*']?[\)\]\(\[dp/\\:\}\{@\|3]+"
            r"|[\)\]\(\[dp/\\\}\{@\|]+[\-o\*']?[:;=8][<>]?"
            r"|</?3+|x-?d+|\^_*\^)")


@keras.saving.register_keras_serializable(package="textgen")
def lower_keep_emoticons(texts: tf.Tensor) -> tf.Tensor:
    """texts (any shape) string -> the same shape: lowercased, punctuation stripped from every
    whitespace-separated token that is not an emoticon, tokens joined by single spaces."""
    texts = tf.strings.lower(texts)
    tokens = tf.strings.split(texts)  # (..., None) ragged: whitespace tokens
    kept = tf.ragged.map_flat_values(
        lambda t: tf.where(tf.strings.regex_full_match(t, EMOTICON), t, tf.strings.regex_replace(t, STRIP_PUNCTUATION, "")),
        tokens)
    return tf.strings.reduce_join(kept, axis=-1, separator=" ")


def for_layer(name: str):
    """What TextVectorization's `standardize` takes for the choice `name`: its own string for the
    built-in ones, the registered function for the others."""
    if name not in CHOICES:
        raise ValueError(f"standardize must be one of {', '.join(CHOICES)} (got {name!r})")
    return lower_keep_emoticons if name == "lower_keep_emoticons" else name


def name_of(layer_standardize) -> str:
    """The choice behind a TextVectorization's `standardize` (a string or the registered function)."""
    return layer_standardize if isinstance(layer_standardize, str) else getattr(layer_standardize, "__name__", "")


def words(texts: tf.Tensor, name: str = DEFAULT) -> tf.RaggedTensor:
    """texts (batch,) string -> words (batch, None) ragged string, as TextVectorization splits them."""
    if name == "lower_keep_emoticons":
        texts = lower_keep_emoticons(texts)
    else:
        texts = tf.strings.lower(texts)
        if name == "lower_and_strip_punctuation":
            texts = tf.strings.regex_replace(texts, STRIP_PUNCTUATION, "")
    return tf.strings.split(texts)  # whitespace
