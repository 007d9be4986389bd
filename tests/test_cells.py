"""Every cell kind follows its equations: forward pass, masking, Bidirectional and BPTT gradients.

Each Keras layer is built through `make_rnn` (the one switch the models use) and compared with
the float64 NumPy equations in `tests/equations.py`, using the layer's own (randomised) weights.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.equations import cell_weights, run
from textgen.cells import MinimalGRUCell, PeepholeLSTMCell
from textgen.config import CELL_KINDS, ConfigError
from textgen.models.rnn import cell_kind, make_rnn, state_count

# On Ampere and newer GPUs TensorFlow runs float32 matmuls in TF32 (~1e-3 relative error), which
# would drown the 1e-5 comparisons below; compare true float32 instead. No effect on CPU.
tf.config.experimental.enable_tensor_float_32_execution(False)

BATCH, TIME, INPUT_DIM, UNITS = 3, 7, 4, 5
ATOL = 1e-5  # float32 Keras against float64 NumPy


def randomise(layer: keras.layers.Layer, rng: np.random.Generator, scale: float = 0.5) -> None:
    """Moderate random weights, biases included, so every gate and every block matters."""
    layer.set_weights([rng.normal(0.0, scale, w.shape) for w in layer.get_weights()])


def built_layer(kind: str, rng: np.random.Generator, **kwargs) -> keras.layers.Layer:
    layer = make_rnn(kind, UNITS, return_sequences=True, return_state=True, **kwargs)
    layer.build((None, None, INPUT_DIM))
    randomise(layer, rng)
    return layer


def inputs(rng: np.random.Generator, batch: int = BATCH, time: int = TIME) -> np.ndarray:
    # Rounded to float32 first, so NumPy sees exactly the numbers Keras sees.
    return rng.normal(0.0, 1.0, (batch, time, INPUT_DIM)).astype("float32")


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_forward_pass_follows_the_equations(kind):
    rng = np.random.default_rng(1)
    layer = built_layer(kind, rng)
    x = inputs(rng)
    outputs, *states = layer(x)
    assert len(states) == state_count(kind)
    expected_outputs, expected_states = run(kind, x, cell_weights(layer))
    np.testing.assert_allclose(np.asarray(outputs), expected_outputs, rtol=0, atol=ATOL)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=ATOL)
    # The check is meaningful: outputs move well away from zero and differ between steps.
    assert np.abs(expected_outputs).max() > 0.3
    assert np.abs(np.diff(expected_outputs, axis=1)).max() > 0.1


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_initial_state_is_used(kind):
    rng = np.random.default_rng(2)
    layer = built_layer(kind, rng)
    x = inputs(rng)
    initial = [rng.normal(0.0, 0.5, (BATCH, UNITS)).astype("float32") for _ in range(state_count(kind))]
    outputs, *states = layer(x, initial_state=[tf.constant(s) for s in initial])
    expected_outputs, expected_states = run(kind, x, cell_weights(layer), [s.astype(np.float64) for s in initial])
    np.testing.assert_allclose(np.asarray(outputs), expected_outputs, rtol=0, atol=ATOL)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=ATOL)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_masked_right_padded_batch_equals_each_example_alone(kind):
    rng = np.random.default_rng(3)
    layer = built_layer(kind, rng)
    lengths = [TIME, 3, 1]
    x = inputs(rng)
    mask = np.arange(TIME)[None, :] < np.array(lengths)[:, None]  # (batch, time)
    x[~mask] = 99.0  # padding content must not matter
    outputs, *states = layer(x, mask=tf.constant(mask))
    w = cell_weights(layer)
    for b, length in enumerate(lengths):
        want_out, want_states = run(kind, x[b : b + 1, :length], w)
        np.testing.assert_allclose(np.asarray(outputs)[b, :length], want_out[0], rtol=0, atol=ATOL)
        for got, want in zip(states, want_states):
            np.testing.assert_allclose(np.asarray(got)[b], want[0], rtol=0, atol=ATOL)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_bidirectional_masked_follows_the_equations(kind):
    rng = np.random.default_rng(4)
    bi = keras.layers.Bidirectional(make_rnn(kind, UNITS, return_sequences=True, return_state=True))
    bi.build((None, None, INPUT_DIM))
    randomise(bi, rng)
    lengths = [TIME, 4, 2]
    x = inputs(rng)
    mask = np.arange(TIME)[None, :] < np.array(lengths)[:, None]
    outputs, *states = bi(x, mask=tf.constant(mask))
    n = state_count(kind)
    assert len(states) == 2 * n  # forward states, then backward states
    outputs = np.asarray(outputs)  # (batch, time, 2·units): [forward | backward], aligned in time
    w_fwd, w_bwd = cell_weights(bi.forward_layer), cell_weights(bi.backward_layer)
    for b, length in enumerate(lengths):
        seq = x[b : b + 1, :length]
        fwd_out, fwd_states = run(kind, seq, w_fwd)
        bwd_out, bwd_states = run(kind, seq[:, ::-1], w_bwd)  # reads the valid words last to first
        np.testing.assert_allclose(outputs[b, :length, :UNITS], fwd_out[0], rtol=0, atol=ATOL)
        np.testing.assert_allclose(outputs[b, :length, UNITS:], bwd_out[0, ::-1], rtol=0, atol=ATOL)
        for got, want in zip(states, fwd_states + bwd_states):
            np.testing.assert_allclose(np.asarray(got)[b], want[0], rtol=0, atol=ATOL)


def _loss_weights(rng, layer_out_shapes):
    return [tf.constant(rng.normal(0.0, 1.0, s)) for s in layer_out_shapes]


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_bptt_gradients_equal_central_finite_differences(kind):
    """GradientTape through time equals central differences for every weight and input entry."""
    rng = np.random.default_rng(5)
    batch, time, input_dim, units = 2, 4, 2, 3
    # dtype on the layer, not set_floatx: Keras freezes its global policy at the first layer built.
    layer = make_rnn(kind, units, return_sequences=True, return_state=True, dtype="float64")
    layer.build((None, None, input_dim))
    assert all(v.dtype == "float64" for v in layer.weights)
    randomise(layer, rng)
    x = tf.constant(rng.normal(0.0, 1.0, (batch, time, input_dim)))
    # A random linear read-out of every output and final state, so each one feeds the loss.
    coef = _loss_weights(rng, [(batch, time, units)] + [(batch, units)] * state_count(kind))

    @tf.function
    def loss(x):
        outs = layer(x)
        return tf.add_n([tf.reduce_sum(o * c) for o, c in zip(outs, coef)])

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(x)
    grads = tape.gradient(value, [*layer.trainable_weights, x])

    eps = 1e-6
    for var, grad in zip(layer.trainable_weights, grads):
        base = var.numpy()
        numeric = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            for sign in (1, -1):
                shifted = base.copy()
                shifted[idx] += sign * eps
                var.assign(shifted)
                numeric[idx] += sign * float(loss(x)) / (2 * eps)
        var.assign(base)
        np.testing.assert_allclose(np.asarray(grad), numeric, rtol=1e-3, atol=1e-7, err_msg=var.name)
    x_np, numeric = x.numpy(), np.zeros(x.shape)
    for idx in np.ndindex(x_np.shape):
        for sign in (1, -1):
            shifted = x_np.copy()
            shifted[idx] += sign * eps
            numeric[idx] += sign * float(loss(tf.constant(shifted))) / (2 * eps)
    np.testing.assert_allclose(np.asarray(grads[-1]), numeric, rtol=1e-3, atol=1e-7, err_msg="inputs")
    assert np.abs(numeric).max() > 1e-2  # the gradients are not trivially zero


@pytest.mark.parametrize("kind", ["minimal_gru", "peephole_lstm"])
def test_custom_cells_run_in_mixed_precision(kind):
    """Training may use mixed_bfloat16: float32 weights, bfloat16 maths, same results to ~1e-2."""
    rng = np.random.default_rng(6)
    exact = built_layer(kind, rng)
    mixed = make_rnn(kind, UNITS, return_sequences=True, return_state=True, dtype="mixed_bfloat16")
    mixed.build((None, None, INPUT_DIM))
    mixed.set_weights(exact.get_weights())
    assert all(v.dtype == "float32" for v in mixed.weights)
    x = inputs(rng)
    for got, want in zip(mixed(x), exact(x)):
        assert got.dtype == "bfloat16"
        np.testing.assert_allclose(np.asarray(tf.cast(got, "float32")), np.asarray(want), rtol=0, atol=5e-2)


@pytest.mark.parametrize("cls", [MinimalGRUCell, PeepholeLSTMCell])
def test_cell_config_round_trip(cls):
    extra = {"unit_forget_bias": False, "peephole_initializer": "ones"} if cls is PeepholeLSTMCell else {}
    cell = cls(4, kernel_initializer="he_normal", recurrent_initializer="zeros", bias_initializer="ones",
               name="my_cell", **extra)
    config = cell.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert clone.units == 4 and clone.name == "my_cell"
    assert isinstance(clone.kernel_initializer, keras.initializers.HeNormal)
    assert isinstance(clone.recurrent_initializer, keras.initializers.Zeros)
    if cls is PeepholeLSTMCell:
        assert clone.unit_forget_bias is False
        assert isinstance(clone.peephole_initializer, keras.initializers.Ones)
    # Registered under the textgen package, so a saved model finds the class by name.
    assert keras.saving.get_registered_object(f"textgen>{cls.__name__}") is cls
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(restored) is cls and restored.get_config() == config


@pytest.mark.parametrize("cls", [MinimalGRUCell, PeepholeLSTMCell])
@pytest.mark.parametrize("units", [0, -3, 2.5, "8"])
def test_cells_refuse_bad_units(cls, units):
    with pytest.raises(ValueError, match="units"):
        cls(units)


def test_peephole_forget_bias_starts_at_one():
    """[update, forget, candidate, output]: only the forget block starts at 1 (as Keras's LSTM)."""
    layer = keras.layers.RNN(PeepholeLSTMCell(3, bias_initializer="zeros"))
    layer.build((None, None, 2))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    lstm = keras.layers.LSTM(3)
    lstm.build((None, None, 2))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), lstm.cell.bias.numpy())  # same layout as Keras
    # A non-zero base initializer fills the other blocks; the forget block is still exactly 1.
    layer = keras.layers.RNN(PeepholeLSTMCell(3, bias_initializer=keras.initializers.Constant(0.25)))
    layer.build((None, None, 2))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), [0.25] * 3 + [1.0] * 3 + [0.25] * 6)
    layer = keras.layers.RNN(PeepholeLSTMCell(3, unit_forget_bias=False, bias_initializer="zeros"))
    layer.build((None, None, 2))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), np.zeros(12))


def test_cell_weight_shapes_follow_the_spec():
    gru = make_rnn("minimal_gru", 5, return_sequences=False)
    gru.build((None, None, 3))
    assert {k: v.shape for k, v in cell_weights(gru).items()} == {
        "kernel": (3, 10), "recurrent_kernel": (5, 10), "bias": (10,)}
    lstm = make_rnn("peephole_lstm", 5, return_sequences=False)
    lstm.build((None, None, 3))
    assert {k: v.shape for k, v in cell_weights(lstm).items()} == {
        "kernel": (3, 20), "recurrent_kernel": (5, 20), "peephole_kernel": (5, 15), "bias": (20,)}


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_make_rnn_return_options(kind):
    x = np.zeros((2, 6, 3), "float32")
    last = make_rnn(kind, 4, return_sequences=False)(x)
    assert tuple(last.shape) == (2, 4)
    seq, *states = make_rnn(kind, 4, return_sequences=True, return_state=True, name="r")(x)
    assert tuple(seq.shape) == (2, 6, 4) and [tuple(s.shape) for s in states] == [(2, 4)] * state_count(kind)


def test_builtin_kinds_stay_cudnn_eligible():
    gru = make_rnn("gru", 4, return_sequences=True)
    lstm = make_rnn("lstm", 4, return_sequences=True)
    for layer in (gru, lstm):
        cell = layer.cell
        assert cell.activation is keras.activations.tanh and cell.recurrent_activation is keras.activations.sigmoid
        assert cell.recurrent_dropout == 0 and not layer.unroll and cell.use_bias
    assert gru.cell.reset_after


def test_make_rnn_refuses_unknown_kind():
    with pytest.raises(ConfigError, match="unknown cell kind 'transformer'.*peephole_lstm"):
        make_rnn("transformer", 4, return_sequences=True)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_kind_inverts_make_rnn(kind):
    assert cell_kind(make_rnn(kind, 3, return_sequences=True)) == kind
    assert cell_kind(keras.layers.Bidirectional(make_rnn(kind, 3, return_sequences=False))) == kind


def test_cell_kind_refuses_other_layers():
    with pytest.raises(ValueError, match="not a textgen recurrent layer"):
        cell_kind(keras.layers.Dense(3, name="d"))
    with pytest.raises(ValueError, match="not a textgen recurrent layer"):
        cell_kind(keras.layers.RNN(keras.layers.StackedRNNCells([keras.layers.GRUCell(2)])))
