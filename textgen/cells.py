"""The two recurrent cells written from the source documents, usable inside `keras.layers.RNN`.

Both are registered, so a `.keras` file that uses them loads after `import textgen`.
Shapes: inputs (batch, input_dim); states are lists of (batch, units) tensors.
"""

from __future__ import annotations

import keras
from keras import ops


class _DocumentCell(keras.layers.Layer):
    """Shared constructor arguments and config of the two cells."""

    def __init__(
        self,
        units: int,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive integer; got {units!r}")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.output_size = units

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            recurrent_initializer=keras.initializers.serialize(self.recurrent_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="textgen")
class MinimalGRUCell(_DocumentCell):
    """The simplified GRU of the documents: one update gate, no reset gate.

        c̃⟨t⟩ = tanh(W_c [c⟨t−1⟩, x⟨t⟩] + b_c)
        Γ_u   = σ(W_u [c⟨t−1⟩, x⟨t⟩] + b_u)
        c⟨t⟩  = Γ_u ∗ c̃⟨t⟩ + (1 − Γ_u) ∗ c⟨t−1⟩          output = state = c⟨t⟩

    `W [c, x]` is split as `x @ kernel + c @ recurrent_kernel`. Weights: `kernel`
    (input_dim, 2·units), `recurrent_kernel` (units, 2·units), `bias` (2·units); column blocks
    in the order [update, candidate].

    Example:
        >>> layer = keras.layers.RNN(MinimalGRUCell(32), return_sequences=True)
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(units, **kwargs)
        self.state_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 2 * self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 2 * self.units), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(2 * self.units,), initializer=self.bias_initializer, name="bias")

    def call(self, inputs, states, training=False):
        c_prev = states[0] if isinstance(states, (list, tuple)) else states  # (batch, units)
        # (batch, 2·units): [update | candidate] pre-activations
        z = ops.matmul(inputs, self.kernel) + ops.matmul(c_prev, self.recurrent_kernel) + self.bias
        z_u, z_c = ops.split(z, 2, axis=-1)
        gamma_u = ops.sigmoid(z_u)
        c_tilde = ops.tanh(z_c)
        c = gamma_u * c_tilde + (1.0 - gamma_u) * c_prev
        return c, [c]


@keras.saving.register_keras_serializable(package="textgen")
class PeepholeLSTMCell(_DocumentCell):
    """The documents' LSTM whose three gates also read c⟨t−1⟩ through a full matrix.

        Γ_u, Γ_f, Γ_o = σ(W [a⟨t−1⟩, x⟨t⟩, c⟨t−1⟩] + b)
        c̃⟨t⟩ = tanh(W_c [a⟨t−1⟩, x⟨t⟩] + b_c)
        c⟨t⟩  = Γ_u ∗ c̃⟨t⟩ + Γ_f ∗ c⟨t−1⟩
        a⟨t⟩  = Γ_o ∗ tanh(c⟨t⟩)

    The document prints a⟨t⟩ = Γ_o ∗ c⟨t⟩; the course it follows and every LSTM implementation
    apply tanh to the cell state first, and so does this cell.

    Weights: `kernel` (input_dim, 4·units), `recurrent_kernel` (units, 4·units), `bias`
    (4·units), column blocks in Keras's LSTM order [update (input), forget, candidate, output];
    `peephole_kernel` (units, 3·units), blocks [update, forget, output]. States [a, c].
    With `unit_forget_bias` (default, as in Keras's LSTM) the forget bias starts at 1.
    """

    def __init__(self, units: int, unit_forget_bias: bool = True, peephole_initializer="glorot_uniform", **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = unit_forget_bias
        self.peephole_initializer = keras.initializers.get(peephole_initializer)
        self.state_size = [units, units]

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.peephole_kernel = self.add_weight(
            shape=(self.units, 3 * self.units), initializer=self.peephole_initializer, name="peephole_kernel"
        )
        if self.unit_forget_bias:
            units, base = self.units, self.bias_initializer

            def bias_initializer(shape, dtype=None):
                return ops.concatenate(
                    [base((units,), dtype=dtype), ops.ones((units,), dtype=dtype), base((2 * units,), dtype=dtype)]
                )
        else:
            bias_initializer = self.bias_initializer
        self.bias = self.add_weight(shape=(4 * self.units,), initializer=bias_initializer, name="bias")

    def call(self, inputs, states, training=False):
        a_prev, c_prev = states  # (batch, units) each
        # (batch, 4·units): [update | forget | candidate | output] pre-activations without peepholes
        z = ops.matmul(inputs, self.kernel) + ops.matmul(a_prev, self.recurrent_kernel) + self.bias
        z_u, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        p_u, p_f, p_o = ops.split(ops.matmul(c_prev, self.peephole_kernel), 3, axis=-1)  # (batch, units) each
        gamma_u = ops.sigmoid(z_u + p_u)
        gamma_f = ops.sigmoid(z_f + p_f)
        gamma_o = ops.sigmoid(z_o + p_o)
        c_tilde = ops.tanh(z_c)
        c = gamma_u * c_tilde + gamma_f * c_prev
        a = gamma_o * ops.tanh(c)
        return a, [a, c]

    def get_config(self):
        config = super().get_config()
        config.update(
            unit_forget_bias=self.unit_forget_bias,
            peephole_initializer=keras.initializers.serialize(self.peephole_initializer),
        )
        return config
