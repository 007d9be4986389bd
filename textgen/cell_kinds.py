"""One home per recurrent cell kind: its Keras layer, weights, parameter count, states and step.

`REGISTRY` holds one `CellKind` per name of `textgen.config.CELL_KINDS` (config keeps the names
so that it imports without TensorFlow; a test checks the two agree). Everything else asks the
registry: `models.rnn.make_rnn` builds layers with it, the compiled sampler, the exports and the
"Inside the RNN" introspection run its `step` (the one TF source of each kind's equations),
`compare` counts parameters with it and `importer` takes its built-in layer classes from it.

| kind          | Keras layer (cell)     | blocks | states | gates `step` reports           | extra weights       |
| ------------- | ---------------------- | ------ | ------ | ------------------------------ | ------------------- |
| simple_rnn    | SimpleRNN              | 1      | [h]    | (none)                         |                     |
| gru           | GRU (reset_after=True) | 3      | [h]    | update Γ_u = 1 − z, reset      | recurrent bias row  |
| lstm          | LSTM                   | 4      | [h, c] | update (input), forget, output |                     |
| minimal_gru   | RNN(MinimalGRUCell)    | 2      | [h]    | update Γ_u                     |                     |
| peephole_lstm | RNN(PeepholeLSTMCell)  | 4      | [h, c] | update (input), forget, output | peephole_kernel     |

`blocks`: kernel (input_dim, blocks·units), recurrent_kernel (units, blocks·units), bias
(blocks·units,) or (2, blocks·units) with a recurrent bias row.

Adding a kind: its Keras cell in `textgen/cells.py` (when Keras has none), a step function here,
one `CellKind` in `REGISTRY`, its name in `textgen.config.CELL_KINDS`; `tests/test_cell_kinds.py`
then runs it through every check.

Example:
    >>> spec = get("lstm")
    >>> spec.states, spec.params(input_dim=32, units=64)
    (2, 24832)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from textgen.cells import MinimalGRUCell, PeepholeLSTMCell
from textgen.config import CELL_KINDS, ConfigError


class Step(NamedTuple):
    """One step's result: the new states ([h] or [h, c]; h is the output) and the gate values."""

    states: list  # each (..., units)
    gates: dict  # gate name -> (..., units) activations in [0, 1]


# --------------------------------------------------------------------------------------------
# The step equations in plain TF ops.
#
# Each takes x_proj (..., blocks·units) = x @ kernel + input bias, the states (each (..., units)),
# the recurrent kernel (units, blocks·units) (or batched, e.g. (directions, units, blocks·units)),
# `matmul(a, w)` (lets the sampler keep bfloat16 weights), and the kind's extra weights. They work
# in any float dtype: the sampler runs float32, the introspection float64.


def _simple_rnn(x_proj, states, recurrent, matmul, rec_bias=None, peephole=None) -> Step:
    """a⟨t⟩ = tanh(x W + b + a⟨t−1⟩ U)."""
    return Step([tf.tanh(x_proj + matmul(states[0], recurrent))], {})


def _gru(x_proj, states, recurrent, matmul, rec_bias=None, peephole=None) -> Step:
    """Keras GRU with reset_after=True, blocks [z | r | h̃]; `rec_bias` (blocks·units,) is its second bias row.

    z = σ(x W_z + b_z + h U_z + b'_z);  r = σ(x W_r + b_r + h U_r + b'_r)
    h̃ = tanh(x W_h + b_h + r ∗ (h U_h + b'_h));  h⟨t⟩ = z ∗ h⟨t−1⟩ + (1 − z) ∗ h̃
    """
    h = states[0]
    rec = matmul(h, recurrent) + rec_bias  # (..., 3u) blocks [z | r | h]
    x_z, x_r, x_h = tf.split(x_proj, 3, axis=-1)
    r_z, r_r, r_h = tf.split(rec, 3, axis=-1)
    z = tf.sigmoid(x_z + r_z)
    r = tf.sigmoid(x_r + r_r)
    hh = tf.tanh(x_h + r * r_h)
    update = 1.0 - z  # Keras's z keeps the old state; the documents' Γ_u weighs the candidate
    return Step([z * h + update * hh], {"update": update, "reset": r})


def _minimal_gru(x_proj, states, recurrent, matmul, rec_bias=None, peephole=None) -> Step:
    """`MinimalGRUCell`, blocks [update | candidate]: c⟨t⟩ = Γ_u ∗ tanh(z_c) + (1 − Γ_u) ∗ c⟨t−1⟩."""
    h = states[0]
    z_u, z_c = tf.split(x_proj + matmul(h, recurrent), 2, axis=-1)
    gamma_u = tf.sigmoid(z_u)
    return Step([gamma_u * tf.tanh(z_c) + (1.0 - gamma_u) * h], {"update": gamma_u})


def _lstm(x_proj, states, recurrent, matmul, rec_bias=None, peephole=None) -> Step:
    """Keras LSTM / `PeepholeLSTMCell`, blocks [i (update) | f | c̃ | o], states [a, c].

    With `peephole` (units, 3·units), blocks [i | f | o], the gates also read c⟨t−1⟩.
    c⟨t⟩ = f ∗ c⟨t−1⟩ + i ∗ tanh(z_c);  a⟨t⟩ = o ∗ tanh(c⟨t⟩)
    """
    h, c = states
    z_i, z_f, z_c, z_o = tf.split(x_proj + matmul(h, recurrent), 4, axis=-1)
    if peephole is not None:
        p_i, p_f, p_o = tf.split(matmul(c, peephole), 3, axis=-1)
        z_i, z_f, z_o = z_i + p_i, z_f + p_f, z_o + p_o
    forget, update = tf.sigmoid(z_f), tf.sigmoid(z_i)
    c = forget * c + update * tf.tanh(z_c)
    output = tf.sigmoid(z_o)
    return Step([output * tf.tanh(c), c], {"update": update, "forget": forget, "output": output})


# --------------------------------------------------------------------------------------------
# The registry


@dataclasses.dataclass(frozen=True)
class CellKind:
    """Everything textgen knows about one cell kind."""

    name: str  # a name of textgen.config.CELL_KINDS
    layer_class: type  # the Keras layer make_rnn builds (keras.layers.RNN around a textgen cell)
    cell_class: type  # the cell inside that layer; with layer_class it identifies a loaded layer
    blocks: int  # column blocks of kernel, recurrent_kernel and bias, each `units` wide
    states: int  # state tensors carried: 1 ([h]) or 2 ([h, c]); states[0] is the output
    gates: tuple[str, ...]  # the gates `step` reports, in display order
    step: Callable[..., Step]  # step(x_proj, states, recurrent, matmul, rec_bias=None, peephole=None)
    recurrent_bias: bool = False  # bias is (2, blocks·units): [input row; recurrent row] (GRU reset_after)
    peephole: bool = False  # a peephole_kernel (units, 3·units) from c⟨t−1⟩ to the three gates

    @property
    def builtin(self) -> bool:
        """True for the Keras built-in layers (SimpleRNN, GRU, LSTM), False for textgen's cells."""
        return self.layer_class is not keras.layers.RNN

    @property
    def weight_names(self) -> tuple[str, ...]:
        """The cell's weights, in the order the cell creates them (`layer.weights` order)."""
        return ("kernel", "recurrent_kernel") + (("peephole_kernel",) if self.peephole else ()) + ("bias",)

    def weight_shapes(self, input_dim: int, units: int) -> dict[str, tuple[int, ...]]:
        """Shape of each weight of a layer reading `input_dim` features, in `weight_names` order."""
        width = self.blocks * units
        shapes = {"kernel": (input_dim, width), "recurrent_kernel": (units, width)}
        if self.peephole:
            shapes["peephole_kernel"] = (units, 3 * units)
        shapes["bias"] = (2, width) if self.recurrent_bias else (width,)
        return shapes

    def params(self, input_dim: int, units: int) -> int:
        """Weights of one layer reading `input_dim` features, as Keras builds it.

        simple_rnn d·u + u² + u;  gru 3(d·u + u²) + 6u;  lstm 4(d·u + u² + u);
        minimal_gru 2(d·u + u² + u);  peephole_lstm 4(d·u + u² + u) + 3u².
        """
        return sum(int(np.prod(shape)) for shape in self.weight_shapes(input_dim, units).values())

    def state_sizes(self, units: int) -> list[int]:
        """Sizes of the states of a layer with `units`, e.g. [units, units] for the LSTMs."""
        return [units] * self.states

    def split_bias(self, bias):
        """(input bias (blocks·units,), recurrent bias (blocks·units,) or None) of the cell's `bias`."""
        return (bias[0], bias[1]) if self.recurrent_bias else (bias, None)

    def make(self, units: int, *, return_sequences: bool, return_state: bool = False, name: str | None = None,
             dtype=None) -> keras.layers.Layer:
        """One recurrent layer of this kind (see `textgen.models.rnn.make_rnn` for the arguments)."""
        common = dict(return_sequences=return_sequences, return_state=return_state, name=name, dtype=dtype)
        if self.builtin:
            return self.layer_class(units, **common)
        return keras.layers.RNN(self.cell_class(units, dtype=dtype), **common)


_LSTM_GATES = ("update", "forget", "output")

REGISTRY: dict[str, CellKind] = {
    spec.name: spec
    for spec in (
        CellKind("simple_rnn", keras.layers.SimpleRNN, keras.layers.SimpleRNNCell, blocks=1, states=1, gates=(),
                 step=_simple_rnn),
        CellKind("gru", keras.layers.GRU, keras.layers.GRUCell, blocks=3, states=1, gates=("update", "reset"),
                 step=_gru, recurrent_bias=True),
        CellKind("lstm", keras.layers.LSTM, keras.layers.LSTMCell, blocks=4, states=2, gates=_LSTM_GATES,
                 step=_lstm),
        CellKind("minimal_gru", keras.layers.RNN, MinimalGRUCell, blocks=2, states=1, gates=("update",),
                 step=_minimal_gru),
        CellKind("peephole_lstm", keras.layers.RNN, PeepholeLSTMCell, blocks=4, states=2, gates=_LSTM_GATES,
                 step=_lstm, peephole=True),
    )
}


def get(kind: str) -> CellKind:
    """The `CellKind` named `kind`.

    Raises:
        ConfigError: `kind` is not one of `CELL_KINDS` (a ValueError too).
    """
    try:
        return REGISTRY[kind]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown cell kind {kind!r}; choose one of {', '.join(CELL_KINDS)}") from None


def cell_kind(layer: keras.layers.Layer) -> str:
    """The inverse of `CellKind.make`: the kind name of a recurrent layer (Bidirectional unwrapped).

    Raises:
        ValueError: the layer is none of the registry's layer classes with its cell class.
    """
    if isinstance(layer, keras.layers.Bidirectional):
        layer = layer.forward_layer
    cell = getattr(layer, "cell", None)
    for spec in REGISTRY.values():
        if isinstance(layer, spec.layer_class) and isinstance(cell, spec.cell_class):
            return spec.name
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is not a textgen recurrent layer")


def equation_kind(layer: keras.layers.Layer) -> str:
    """`cell_kind`, after checking the layer uses the settings whose equations `step` implements.

    The built-in layers must keep what `make_rnn` builds: tanh activation with bias, sigmoid gates,
    GRU with `reset_after=True`. textgen's own cells have no such settings.

    Raises:
        ValueError: the layer is not one of the registry's kinds with those settings.
    """
    spec = REGISTRY[cell_kind(layer)]
    if not spec.builtin:
        return spec.name
    cell = (layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer).cell
    if keras.activations.serialize(cell.activation) != "tanh" or not cell.use_bias:
        raise ValueError(f"layer {layer.name!r}: only tanh activation with bias is supported")
    if spec.gates and keras.activations.serialize(cell.recurrent_activation) != "sigmoid":
        raise ValueError(f"layer {layer.name!r}: only a sigmoid recurrent activation is supported")
    if spec.recurrent_bias and not cell.reset_after:
        raise ValueError(f"layer {layer.name!r}: only {spec.layer_class.__name__}(reset_after=True) is supported")
    return spec.name


def layer_weights(layer: keras.layers.Layer, dtype="float32") -> dict[str, np.ndarray]:
    """A recurrent layer's cell weights by name (`CellKind.weight_names`) as NumPy arrays of `dtype`."""
    cell = layer.cell
    return {name: keras.ops.convert_to_numpy(getattr(cell, name)).astype(dtype)
            for name in REGISTRY[cell_kind(layer)].weight_names}
