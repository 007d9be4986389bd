"""A character model's step as plain TF ops: the model's own room for what the sampler
(`textgen.sampling`), the exports (`textgen.export`) and the int8 engine (`textgen.lite`) run.

    ids (batch,) -> table[ids] (the embedding already multiplied by the first kernel, + bias)
    -> each layer's cell equations (textgen.cell_kinds) (batch, units) -> logits = h @ W + b (batch, vocab)

`CharLMStep` needs no Keras at call time, so it traces into SavedModels and TFLite. The sampling
loop around it (penalty, temperature, top-k / top-p, the noise) is `textgen.sampling`'s.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen import cell_kinds
from textgen.models.char_lm import rnn_layers
from textgen.vocab import vocabulary_of

PRECISIONS = ("float32", "bfloat16")  # of the weights


class CharLMStep(tf.Module):
    """A character model's weights as tf.Variables and its step as plain TF ops.

    Needs no Keras at call time, so it traces into SavedModels and TFLite. States are a tuple of
    (batch, units) float32 tensors: per layer [h] (simple_rnn, gru, minimal_gru) or [h, c] (LSTMs).

    Args:
        model: a textgen character model (`build_char_lm`): layers `embedding`, `rnn_0..`, `logits`.
        precision: "float32" (equal to Keras up to rounding) or "bfloat16" (weights stored in
            bfloat16 for speed; activations and states stay float32).
        fuse_embedding: store `embedding @ kernel_0 + bias_0` as one (vocab, gates) table, so the
            first layer's input projection is a row lookup instead of a matmul.
    """

    def __init__(self, model: keras.Model, precision: str = "float32", fuse_embedding: bool = True, name=None):
        super().__init__(name=name or "char_lm_core")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        try:
            layers = rnn_layers(model)
            embedding = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings).astype("float32")
            dense = model.get_layer("logits")
        except ValueError as err:
            raise ValueError(f"not a textgen character model: {err}") from err
        self.vocabulary = vocabulary_of(model)
        self.vocab_size = len(self.vocabulary) + 1
        try:
            self.kinds = [cell_kinds.equation_kind(layer) for layer in layers]
        except ValueError as err:
            raise ValueError(str(err).replace("is not a textgen recurrent layer",
                                              "is not a supported recurrent layer")) from err
        self.units = [int(layer.cell.units) for layer in layers]
        self.precision = precision
        self.fuse_embedding = fuse_embedding
        wdtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
        weights = [cell_kinds.layer_weights(layer, "float32") for layer in layers]

        def var(value, name, dtype=wdtype):
            return tf.Variable(tf.cast(tf.constant(value), dtype), trainable=False, name=name)

        first = weights[0]
        in_bias0 = cell_kinds.REGISTRY[self.kinds[0]].split_bias(first["bias"])[0]  # GRU: bias (2, 3u)
        if fuse_embedding:
            self.table = var(embedding @ first["kernel"] + in_bias0, "table")  # (vocab, gates·units)
        else:
            self.table = var(embedding, "embedding")  # (vocab, embedding_dim)
        self.kernels, self.in_biases, self.recurrent, self.rec_biases, self.peepholes = [], [], [], [], []
        for i, (kind, w) in enumerate(zip(self.kinds, weights)):
            spec = cell_kinds.REGISTRY[kind]
            in_bias, rec_bias = spec.split_bias(w["bias"])
            self.kernels.append(var(w["kernel"], f"kernel_{i}"))
            self.in_biases.append(var(in_bias, f"in_bias_{i}", tf.float32))
            self.recurrent.append(var(w["recurrent_kernel"], f"recurrent_kernel_{i}"))
            if spec.recurrent_bias:
                self.rec_biases.append(var(rec_bias, f"rec_bias_{i}", tf.float32))
            if spec.peephole:
                self.peepholes.append(var(w["peephole_kernel"], f"peephole_kernel_{i}"))
        self.dense_kernel = var(keras.ops.convert_to_numpy(dense.kernel).astype("float32"), "dense_kernel")
        self.dense_bias = var(keras.ops.convert_to_numpy(dense.bias).astype("float32"), "dense_bias", tf.float32)

    @property
    def state_sizes(self) -> list[int]:
        """Sizes of the flat states, in order."""
        return [size for kind, u in zip(self.kinds, self.units) for size in cell_kinds.REGISTRY[kind].state_sizes(u)]

    def zero_states(self, batch) -> tuple:
        return tuple(tf.zeros(tf.stack([batch, size]), tf.float32) for size in self.state_sizes)

    def _mm(self, x, w):
        # float32 (batch, in) @ weight (in, out) -> float32 (batch, out); bf16 weights take bf16 inputs.
        if w.dtype == tf.float32:
            return tf.matmul(x, w)
        return tf.cast(tf.matmul(tf.cast(x, w.dtype), w), tf.float32)

    def step(self, ids, states):
        """ids (batch,) int32, states tuple -> logits (batch, vocab) float32, new states tuple."""
        new_states = []
        s = 0
        gru_i = peep_i = 0
        x = None
        for i, kind in enumerate(self.kinds):
            if i == 0 and self.fuse_embedding:
                x_proj = tf.cast(tf.gather(self.table, ids), tf.float32)  # (batch, gates·units), bias included
            else:
                inp = tf.cast(tf.gather(self.table, ids), tf.float32) if i == 0 else x
                x_proj = self._mm(inp, self.kernels[i]) + self.in_biases[i]
            spec = cell_kinds.REGISTRY[kind]
            rec_bias = peephole = None
            if spec.recurrent_bias:
                rec_bias, gru_i = self.rec_biases[gru_i], gru_i + 1
            if spec.peephole:
                peephole, peep_i = self.peepholes[peep_i], peep_i + 1
            n = spec.states
            new = spec.step(x_proj, states[s : s + n], self.recurrent[i], self._mm, rec_bias, peephole).states
            h = new[0]
            new_states += new
            s += len(new)
            x = h  # (batch, units)
        logits = self._mm(x, self.dense_kernel) + self.dense_bias  # (batch, vocab)
        return logits, tuple(new_states)

    def prime(self, ids, lengths, states, logits, seen):
        """Feeds right-padded prompts; rows stop updating after their own length.

        Args:
            ids: (batch, time) int32 prompt ids, 0-padded on the right.
            lengths: (batch,) int32 real lengths (0 keeps the incoming states and logits).
            states, logits, seen: carried values (`seen` (batch, vocab) bool for the penalty).
        Returns:
            states, logits (batch, vocab) for the next character, seen.
        """
        steps = tf.shape(ids)[1]

        def body(t, states, logits, seen):
            active = (t < lengths)[:, None]  # (batch, 1)
            new_logits, new_states = self.step(ids[:, t], states)
            states = tuple(tf.where(active, n, o) for n, o in zip(new_states, states))
            logits = tf.where(active, new_logits, logits)
            seen = seen | (active & tf.one_hot(ids[:, t], self.vocab_size, on_value=True, off_value=False))
            return t + 1, states, logits, seen

        _, states, logits, seen = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), states, logits, seen)
        )
        return states, logits, seen
