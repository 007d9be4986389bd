"""The one switch from a cell-kind name to a Keras recurrent layer.

Built-in `GRU`/`LSTM` keep their cuDNN-eligible defaults (tanh/sigmoid, `recurrent_dropout=0`,
`unroll=False`, `reset_after=True`); dropout is applied by separate layers between the RNNs.
"""

from __future__ import annotations

import keras

from textgen.cells import MinimalGRUCell, PeepholeLSTMCell
from textgen.config import CELL_KINDS, ConfigError


def make_rnn(
    kind: str,
    units: int,
    *,
    return_sequences: bool,
    return_state: bool = False,
    name: str | None = None,
    dtype=None,
) -> keras.layers.Layer:
    """Builds one recurrent layer of `kind` (see `textgen.config.CELL_KINDS`).

    Args:
        kind: `simple_rnn | gru | lstm | minimal_gru | peephole_lstm`.
        units: hidden size.
        return_sequences: (batch, time, units) outputs when True, else (batch, units).
        return_state: also return the final states (a list; LSTM kinds return [a, c]).
        name: layer name.
        dtype: dtype policy of the layer and its cell (e.g. "float64" for gradient checks);
            None follows Keras's global policy.

    Raises:
        ConfigError: `kind` is not one of `CELL_KINDS`.
    """
    common = dict(return_sequences=return_sequences, return_state=return_state, name=name, dtype=dtype)
    if kind == "simple_rnn":
        return keras.layers.SimpleRNN(units, **common)
    if kind == "gru":
        return keras.layers.GRU(units, **common)
    if kind == "lstm":
        return keras.layers.LSTM(units, **common)
    if kind == "minimal_gru":
        return keras.layers.RNN(MinimalGRUCell(units, dtype=dtype), **common)
    if kind == "peephole_lstm":
        return keras.layers.RNN(PeepholeLSTMCell(units, dtype=dtype), **common)
    # ConfigError is a ValueError too, so older callers that catch ValueError still work.
    raise ConfigError(f"unknown cell kind {kind!r}; choose one of {', '.join(CELL_KINDS)}")


def state_sizes(layer: keras.layers.Layer) -> list[int]:
    """Sizes of a recurrent layer's states, e.g. [units] for GRU, [units, units] for LSTM."""
    size = layer.cell.state_size
    return list(size) if isinstance(size, (list, tuple)) else [int(size)]


def state_count(kind: str) -> int:
    """Number of state tensors a cell kind carries."""
    return 2 if kind in ("lstm", "peephole_lstm") else 1


def cell_kind(layer: keras.layers.Layer) -> str:
    """The inverse of `make_rnn`: the cell-kind name of a recurrent layer (Bidirectional unwrapped).

    Raises:
        ValueError: the layer is not one `make_rnn` builds.
    """
    if isinstance(layer, keras.layers.Bidirectional):
        layer = layer.forward_layer
    # Subclasses first: SimpleRNN, GRU and LSTM are all keras.layers.RNN.
    for cls, kind in ((keras.layers.SimpleRNN, "simple_rnn"), (keras.layers.GRU, "gru"), (keras.layers.LSTM, "lstm")):
        if isinstance(layer, cls):
            return kind
    cell = getattr(layer, "cell", None)
    if isinstance(cell, MinimalGRUCell):
        return "minimal_gru"
    if isinstance(cell, PeepholeLSTMCell):
        return "peephole_lstm"
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is not a textgen recurrent layer")


def equation_kind(layer: keras.layers.Layer) -> str:
    """`cell_kind`, after checking the layer uses the settings whose equations textgen re-implements.

    The compiled sampler, the exports and the introspection write each cell's equations by hand for
    what `make_rnn` builds: tanh activation with bias, sigmoid gates, GRU with `reset_after=True`.

    Raises:
        ValueError: the layer is not one of the five kinds with those settings.
    """
    kind = cell_kind(layer)
    if kind in ("minimal_gru", "peephole_lstm"):
        return kind
    cell = layer.cell
    if keras.activations.serialize(cell.activation) != "tanh" or not cell.use_bias:
        raise ValueError(f"layer {layer.name!r}: only tanh activation with bias is supported")
    if kind != "simple_rnn" and keras.activations.serialize(cell.recurrent_activation) != "sigmoid":
        raise ValueError(f"layer {layer.name!r}: only a sigmoid recurrent activation is supported")
    if kind == "gru" and not cell.reset_after:
        raise ValueError(f"layer {layer.name!r}: only GRU(reset_after=True) is supported")
    return kind
