"""The one switch from a cell-kind name to a Keras recurrent layer.

What each kind builds lives in its `textgen.cell_kinds.CellKind`; this module is the models' door
to it. Built-in `GRU`/`LSTM` keep their cuDNN-eligible defaults (tanh/sigmoid,
`recurrent_dropout=0`, `unroll=False`, `reset_after=True`); dropout is applied by separate layers
between the RNNs.
"""

from __future__ import annotations

import keras

from textgen import cell_kinds
from textgen.cell_kinds import cell_kind, equation_kind  # re-exported: callers use models.rnn.cell_kind

__all__ = ["cell_kind", "equation_kind", "make_rnn", "state_count", "state_sizes"]


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
        ConfigError: `kind` is not one of `CELL_KINDS` (a ValueError too, so older callers that
            catch ValueError still work).
    """
    return cell_kinds.get(kind).make(
        units, return_sequences=return_sequences, return_state=return_state, name=name, dtype=dtype
    )


def state_sizes(layer: keras.layers.Layer) -> list[int]:
    """Sizes of a recurrent layer's states, e.g. [units] for GRU, [units, units] for LSTM."""
    size = layer.cell.state_size
    return list(size) if isinstance(size, (list, tuple)) else [int(size)]


def state_count(kind: str) -> int:
    """Number of state tensors a cell kind carries (ConfigError for an unknown kind)."""
    return cell_kinds.get(kind).states
