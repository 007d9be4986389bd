"""Adversarial training on the word embeddings (Miyato, Dai & Goodfellow 2017), for sentiment models.

Each step also trains on the batch with its embedded words moved, within an L2 ball of radius
`epsilon` per text, in the direction that raises the loss most (to first order):

    g     = dL/de                      e: the embedded words (batch, sequence_length, embedding_dim)
    r_adv = epsilon · g / ||g||₂       norm over one text's words and dimensions, no gradient through it
    loss  = L(e) + L(e + r_adv)

so nearby points in embedding space get the same label, the regulariser that took Miyato et al.'s
pretrained LSTM from 92.8 % to 94.1 % on IMDB. It costs a second forward and backward pass per step.

Only the training model differs: `build_sentiment_model(..., perturbation=True)` adds the input `r`
(batch, sequence_length, embedding_dim) added to the embedded words (`textgen.layers.AddPerturbation`
keeps their padding mask), and `AdversarialTrainer` wraps it with zeros for `r` at inference. Its weights
are the plain model's, in the same order, so what is saved (`train._export_model`) is the plain model.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class AdversarialTrainer(keras.Model):
    """The training model of a sentiment run with `TrainConfig.adversarial` > 0 (never saved).

    Args:
        inner: the sentiment model built with `perturbation=True`: inputs [text, r].
        epsilon: L2 radius of the perturbation of one text's embedded words.
    """

    def __init__(self, inner: keras.Model, epsilon: float, **kwargs):
        super().__init__(name=kwargs.pop("name", "adversarial_" + inner.name), **kwargs)
        self.inner = inner
        self.epsilon = float(epsilon)
        self._r_shape = tuple(inner.inputs[1].shape[1:])  # (sequence_length, embedding_dim)
        self.built = True  # its only weights are the (built) inner model's

    # The plain model's layers, by name (transfer, layer groups of fine-tuning, resume).
    @property
    def layers(self):
        return self.inner.layers

    def get_layer(self, name=None, index=None):
        return self.inner.get_layer(name=name, index=index)

    def _zeros(self, text) -> tf.Tensor:
        dtype = self.inner.get_layer("embedding").compute_dtype
        return tf.zeros(tf.concat([tf.shape(text)[:1], self._r_shape], 0), dtype=dtype)  # (batch, seq, dim)

    def call(self, text, training=False):
        return self.inner([text, self._zeros(text)], training=training)

    def _loss(self, x, y, y_pred, sample_weight):
        return self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)

    def clean_pass(self, x, y, sample_weight):
        """One forward and backward pass on the batch as it is: (loss, predictions, the weights'
        gradients of the scaled loss, r_adv (batch, sequence_length, embedding_dim))."""
        zeros = self._zeros(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(zeros)
            y_pred = self.inner([x, zeros], training=True)
            loss = self._loss(x, y, y_pred, sample_weight)
            scaled = self.optimizer.scale_loss(loss) if self.optimizer is not None else loss
        g = tf.stop_gradient(tf.cast(tape.gradient(scaled, zeros), tf.float32))  # dL/de (batch, seq, dim)
        grads = tape.gradient(scaled, self.trainable_weights)
        del tape
        norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=[1, 2], keepdims=True)) + 1e-12  # (batch, 1, 1)
        return loss, y_pred, grads, tf.cast(self.epsilon * g / norm, zeros.dtype)

    # Public Keras API only, as in the guide "Customizing what happens in fit()": `compute_loss` (the
    # compiled losses and loss weights), the optimizer's loss scaling, and the "loss" metric among
    # `self.metrics`, so "loss" in the logs means what it means in fit (here the clean loss plus the
    # adversarial one).
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        loss, y_pred, clean_grads, r_adv = self.clean_pass(x, y, sample_weight)
        weights = self.trainable_weights
        with tf.GradientTape() as tape:
            adv_loss = self._loss(x, y, self.inner([x, r_adv], training=True), sample_weight)
            scaled_adv = self.optimizer.scale_loss(adv_loss)
        grads = [_add(a, b) for a, b in zip(clean_grads, tape.gradient(scaled_adv, weights))]
        self.optimizer.apply_gradients(zip(grads, weights))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss + adv_loss, sample_weight=tf.shape(x)[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def _add(a, b):
    """The sum of two gradients of one variable; an embedding's are IndexedSlices (rows of the batch's words)."""
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([a.values, b.values], 0), tf.concat([a.indices, b.indices], 0), a.dense_shape)
    return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)
