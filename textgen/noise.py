"""Counter-based noise: uniform floats that are a pure function of (seed, position, element index).

`tf.random.stateless_uniform` gives different numbers under XLA than in plain TF, so the compiled
sampler and the exported SavedModel would disagree for one seed. This hash (MurmurHash3's 32-bit
finaliser over seed, position and element index) uses only integer ops, which are exact
everywhere: the same seed gives the same text in one call, streamed in chunks, batched with other
requests, or from the exported SavedModel and the TFLite engine.
"""

from __future__ import annotations

import tensorflow as tf

_M1, _M2, _GOLDEN = 0x85EBCA6B, 0xC2B2AE35, 0x9E3779B9


def _fmix32(h):
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16)) * tf.constant(_M1, tf.uint32)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 13)) * tf.constant(_M2, tf.uint32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))


def seed_words(seed) -> tf.Tensor:
    """A seed (a Python int 0..2**63-1, or an int32/int64 scalar tensor) as the (2,) uint32
    [low, high] words the compiled loops take (two's complement bits for negative tensors).

    The loops take words, not an int64, because TFLite has no 64-bit bitwise ops (the int8 engine
    runs the same loop converted to TFLite)."""
    seed = tf.cast(seed, tf.int64)
    return tf.cast(tf.stack([tf.bitwise.bitwise_and(seed, 0xFFFFFFFF),
                             tf.bitwise.bitwise_and(tf.bitwise.right_shift(seed, 32), 0xFFFFFFFF)]), tf.uint32)


def _per_row(x):
    """A per-row (batch,) value as a (batch, 1) column that broadcasts over the vocabulary; a
    scalar stays a scalar (so the scalar loops, and the TFLite graphs made from them, are unchanged)."""
    return x[:, None] if x.shape.rank == 1 else x


def counter_uniform(seed, position, shape, lanes=None):
    """Uniform floats in (0, 1) of `shape` (batch, vocab), a pure function of (seed, position, index).

    Either one request for the whole batch (scalar position, (2,) seed; element index = row·vocab
    + column) or one request per row (continuous batching): seed (batch, 2), position (batch,) and
    `lanes` (batch,) the row's index *within its own request*, so a row's noise does not depend on
    where the batcher put it (index = lane·vocab + column).

    Args:
        seed: (2,) or (batch, 2) uint32 [low, high] words of the seed (`seed_words`).
        position: int32 scalar or (batch,). shape: a 2-element int32 tensor.
        lanes: None, or (batch,) int32.
    """
    lo, hi = seed[..., 0], seed[..., 1]
    key = _fmix32(lo ^ _fmix32(hi + tf.constant(_GOLDEN, tf.uint32)))
    pos = tf.cast(position, tf.uint32) * tf.constant(0x9E3779B1, tf.uint32) + tf.constant(1, tf.uint32)
    key = _per_row(_fmix32(key ^ _fmix32(pos)))  # scalar or (batch, 1)
    if lanes is None:
        index = tf.reshape(tf.range(shape[0] * shape[1], dtype=tf.int32), shape)  # (batch, vocab) element ids
    else:
        index = lanes[:, None] * shape[1] + tf.range(shape[1], dtype=tf.int32)[None, :]  # (batch, vocab)
    bits = _fmix32(key ^ _fmix32(tf.cast(index, tf.uint32)))
    return (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * (1.0 / 16777216.0)  # 24 bits
