"""Custom layers other than the cells (those live in `textgen.cells`).

Registered like the cells, so a `.keras` file that uses them loads after `import textgen`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="textgen")
class MaskedMaxMeanPooling(keras.layers.Layer):
    """Max and mean over the unmasked time steps: (batch, time, features) -> (batch, 2·features).

    `keras.layers.GlobalMaxPooling1D` ignores the mask, so padded steps would take part in the max
    (a right-padded Bidirectional RNN outputs zeros or repeated states there), and the result would
    depend on how much padding a batch carries. Here padded steps never count: the output of a text
    is the same whatever the padding. A text with no unmasked step (empty after vectorisation)
    pools to zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
        weight = ops.cast(keep, inputs.dtype)
        count = ops.sum(weight, axis=1)  # (batch, 1)
        mean = ops.sum(inputs * weight, axis=1) / ops.maximum(count, 1)  # (batch, features)
        lowest = ops.min(inputs, axis=1, keepdims=True)  # below every real value of the row
        largest = ops.max(ops.where(keep, inputs, lowest), axis=1)  # (batch, features)
        largest = ops.where(count > 0, largest, ops.zeros_like(largest))
        return ops.concatenate([largest, mean], axis=-1)  # (batch, 2·features)

    def compute_mask(self, inputs, mask=None):
        return None  # one vector per text: nothing left to mask

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[-1] is None else 2 * input_shape[-1])


@keras.saving.register_keras_serializable(package="textgen")
class ReversibleEmbedding(keras.layers.Embedding):
    """An Embedding that also maps vectors back to scores over its vocabulary (weight tying).

    `layer(ids)`: ids (batch, time) -> vectors (batch, time, output_dim), as `keras.layers.Embedding`.
    `layer(h, reverse=True)`: h (batch, time, output_dim) -> h @ embeddingsᵀ (batch, time, input_dim),
    the language model's next-word logits from the same matrix (Press & Wolf 2017; keras-hub's
    ReversibleEmbedding). Its only weight is the (input_dim, output_dim) table, so it transfers to a
    plain Embedding of the same shape by name.
    """

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        table = ops.cast(self.embeddings, self.compute_dtype)
        return ops.matmul(ops.cast(inputs, self.compute_dtype), ops.transpose(table))

    def compute_output_spec(self, inputs, reverse=False):
        shape = list(inputs.shape)
        shape = shape[:-1] + [self.input_dim] if reverse else shape + [self.output_dim]
        return keras.KerasTensor(shape, dtype=self.compute_dtype)


@keras.saving.register_keras_serializable(package="textgen")
class OutputBias(keras.layers.Layer):
    """x (..., units) -> x + b, b (units,) starting at zeros: the output bias of tied logits.

    `ReversibleEmbedding(h, reverse=True)` has no bias, so the next-word logits could express the
    words' frequencies only through the hidden state; a word LM without it collapsed to a constant
    hidden state predicting the unigram distribution (docs/training.md). The bias carries the
    frequencies and leaves the state free for the context (Press & Wolf 2017 keep one too).
    """

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="textgen")
class AddPerturbation(keras.layers.Layer):
    """[x, r] -> x + r, keeping x's mask (`keras.layers.Add` drops a mask that one input lacks).

    x (batch, time, features) are embedded words with their padding mask; r, of the same shape, is
    the adversarial perturbation of `textgen.adversarial` (zeros at inference). Training models only.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        x, r = inputs
        return x + ops.cast(r, x.dtype)

    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, (list, tuple)) else mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="textgen")
class ReverseTokens(keras.layers.Layer):
    """Each row's tokens in reverse order, padding kept on the right: ids (batch, time) -> (batch, time).

    [5, 8, 2, 0, 0] -> [2, 8, 5, 0, 0]. A backward sentiment classifier reads a text's kept words last
    first, as a backward language model (`textgen train wordlm --backward`) read its texts, while the
    padding stays on the right: the mask, cuDNN's right-padded masks and the predictor's cutting of
    unused columns all hold as for a forward reader. Id 0 is padding only (TextVectorization's).
    """

    def call(self, ids):
        import tensorflow as tf

        lengths = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1)  # (batch,)
        return tf.reverse_sequence(ids, tf.cast(lengths, tf.int64), seq_axis=1, batch_axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape
