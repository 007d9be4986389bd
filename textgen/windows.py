"""Character windows: a text, or a stream of text pieces, -> (characters, next-character ids) tf.data batches."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from textgen.errors import DataError
from textgen.vocab import char_to_id_layer


def char_windows(text: str, vocabulary: Sequence[str], seq_len: int, batch_size: int, shuffle: bool = True,
                 seed: int | None = None, drop_remainder: bool = True, repeat: bool = False) -> tf.data.Dataset:
    """Non-overlapping windows of `seq_len + 1` characters -> (chars, next-char ids) batches.

    Args:
        text: the corpus.
        vocabulary: the model's characters (id i = vocabulary[i - 1]; unknown -> 0).
        seq_len: characters per training sequence (window length is seq_len + 1).
        batch_size: sequences per batch.
        shuffle: shuffle the windows (all of them: one buffer) with `seed`.
        seed: shuffle seed; the same seed gives the same order.
        drop_remainder: drop the last partial batch.
        repeat: repeat forever (for `steps_per_epoch` training).

    Returns:
        Dataset of `(chars, targets)`: `chars` (batch, seq_len) tf.string single characters,
        `targets` (batch, seq_len) int64 ids of the characters one position later.
    """
    if seq_len < 1 or batch_size < 1:
        raise DataError(f"seq_len and batch_size must be >= 1; got {seq_len} and {batch_size}")
    chars = tf.strings.unicode_split(tf.constant(text), "UTF-8", errors="replace")  # (n,)
    n_windows = (int(chars.shape[0]) if chars.shape[0] is not None else 0) // (seq_len + 1)
    need = seq_len + 1 if not drop_remainder else (seq_len + 1) * batch_size
    if n_windows == 0 or (drop_remainder and n_windows < batch_size):
        raise DataError(f"text of {int(chars.shape[0])} characters is too short: one batch needs {need} "
                        f"(seq_len {seq_len} + 1, batch_size {batch_size}); lower seq_len/batch_size")
    windows = tf.reshape(chars[: n_windows * (seq_len + 1)], (n_windows, seq_len + 1))  # (windows, L+1)
    ids = char_to_id_layer(vocabulary)(windows)  # (windows, L+1) int64, computed once
    ds = tf.data.Dataset.from_tensor_slices((windows[:, :-1], ids[:, 1:]))
    if shuffle:
        ds = ds.shuffle(n_windows, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


SHUFFLE_WINDOWS = 16384  # shuffle buffer in windows: all of tiny_shakespeare's; ~50 MB of characters at seq_len 100


def piece_windows(pieces: tf.data.Dataset, vocabulary: Sequence[str], seq_len: int, batch_size: int,
                  shuffle: bool = True, seed: int | None = None, drop_remainder: bool = True, repeat: bool = False,
                  shuffle_buffer: int = SHUFFLE_WINDOWS) -> tf.data.Dataset:
    """`char_windows` over a stream of text pieces (the examples of a TFDS split), in bounded memory.

    Each piece is cut into non-overlapping windows of `seq_len + 1` characters (the last partial
    window of a piece is dropped); windows are shuffled through a buffer of `shuffle_buffer`
    windows. A corpus of one piece (tiny_shakespeare) gives exactly `char_windows`'s windows.

    Returns:
        Dataset of `(chars, targets)`: (batch, seq_len) tf.string characters and (batch, seq_len)
        int64 ids of the characters one position later.
    """
    if seq_len < 1 or batch_size < 1:
        raise DataError(f"seq_len and batch_size must be >= 1; got {seq_len} and {batch_size}")
    span = seq_len + 1
    lookup = char_to_id_layer(vocabulary)

    def windows_of(text):
        chars = tf.strings.unicode_split(text, "UTF-8", errors="replace")  # (n,)
        n = tf.shape(chars)[0] // span
        return tf.data.Dataset.from_tensor_slices(tf.reshape(chars[: n * span], (n, span)))  # (n, L+1) rows

    ds = pieces.flat_map(windows_of)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda w: (w[:, :-1], lookup(w[:, 1:])), num_parallel_calls=tf.data.AUTOTUNE)  # ids once per batch
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)
