"""The cells' equations written out in float64 NumPy, independent of Keras and of `textgen.cells`.

Each `step_*` function takes one time step: x (batch, input_dim) and the previous states, each
(batch, units), with the layer's own weights; `run` loops a step over (batch, time, input_dim).
The equations are the documents' (MinimalGRUCell, PeepholeLSTMCell) and the ones Keras documents
for its built-ins (SimpleRNN; GRU with reset_after=True, gate order [z, r, h]; LSTM, gate order
[i, f, c, o]). Tests compare Keras layers with these, so nothing here may call the code under test.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def blocks(w: np.ndarray, n: int) -> list[np.ndarray]:
    """Splits the last axis of `w` into `n` equal column blocks."""
    return np.split(w, n, axis=-1)


def step_simple_rnn(x, states, w):
    """a⟨t⟩ = tanh(W_aa a⟨t−1⟩ + W_ax x⟨t⟩ + b_a)."""
    (a,) = states
    a = np.tanh(a @ w["recurrent_kernel"] + x @ w["kernel"] + w["bias"])
    return a, [a]


def step_gru(x, states, w):
    """Keras GRU, reset_after=True (bias (2, 3·units): row 0 input bias, row 1 recurrent bias).

    z = σ(x W_z + b_z + h U_z + b'_z);  r = σ(x W_r + b_r + h U_r + b'_r)
    h̃ = tanh(x W_h + b_h + r ∗ (h U_h + b'_h));  h⟨t⟩ = z ∗ h⟨t−1⟩ + (1 − z) ∗ h̃
    """
    (h,) = states
    w_z, w_r, w_h = blocks(w["kernel"], 3)
    u_z, u_r, u_h = blocks(w["recurrent_kernel"], 3)
    b_z, b_r, b_h = blocks(w["bias"][0], 3)
    rb_z, rb_r, rb_h = blocks(w["bias"][1], 3)
    z = sigmoid(x @ w_z + b_z + h @ u_z + rb_z)
    r = sigmoid(x @ w_r + b_r + h @ u_r + rb_r)
    h_tilde = np.tanh(x @ w_h + b_h + r * (h @ u_h + rb_h))
    h = z * h + (1.0 - z) * h_tilde
    return h, [h]


def step_lstm(x, states, w):
    """Keras LSTM, gate order [i, f, c, o].

    i, f, o = σ(x W + h U + b) (their blocks);  c̃ = tanh(x W_c + h U_c + b_c)
    c⟨t⟩ = f ∗ c⟨t−1⟩ + i ∗ c̃;  h⟨t⟩ = o ∗ tanh(c⟨t⟩);  states [h, c]
    """
    h, c = states
    z_i, z_f, z_c, z_o = blocks(x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"], 4)
    c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
    h = sigmoid(z_o) * np.tanh(c)
    return h, [h, c]


def step_minimal_gru(x, states, w):
    """The documents' simplified GRU, blocks [update, candidate].

    c̃ = tanh(W_c [c⟨t−1⟩, x] + b_c);  Γ_u = σ(W_u [c⟨t−1⟩, x] + b_u)
    c⟨t⟩ = Γ_u ∗ c̃ + (1 − Γ_u) ∗ c⟨t−1⟩;  output = state = c⟨t⟩
    """
    (c,) = states
    k_u, k_c = blocks(w["kernel"], 2)
    r_u, r_c = blocks(w["recurrent_kernel"], 2)
    b_u, b_c = blocks(w["bias"], 2)
    c_tilde = np.tanh(c @ r_c + x @ k_c + b_c)
    gamma_u = sigmoid(c @ r_u + x @ k_u + b_u)
    c = gamma_u * c_tilde + (1.0 - gamma_u) * c
    return c, [c]


def step_peephole_lstm(x, states, w):
    """The documents' LSTM: blocks [update, forget, candidate, output]; peepholes [update, forget, output].

    Γ_u, Γ_f, Γ_o = σ(W [a⟨t−1⟩, x, c⟨t−1⟩] + b);  c̃ = tanh(W_c [a⟨t−1⟩, x] + b_c)
    c⟨t⟩ = Γ_u ∗ c̃ + Γ_f ∗ c⟨t−1⟩;  a⟨t⟩ = Γ_o ∗ tanh(c⟨t⟩);  states [a, c]
    """
    a, c = states
    k_u, k_f, k_c, k_o = blocks(w["kernel"], 4)
    r_u, r_f, r_c, r_o = blocks(w["recurrent_kernel"], 4)
    p_u, p_f, p_o = blocks(w["peephole_kernel"], 3)
    b_u, b_f, b_c, b_o = blocks(w["bias"], 4)
    gamma_u = sigmoid(a @ r_u + x @ k_u + c @ p_u + b_u)
    gamma_f = sigmoid(a @ r_f + x @ k_f + c @ p_f + b_f)
    gamma_o = sigmoid(a @ r_o + x @ k_o + c @ p_o + b_o)
    c_tilde = np.tanh(a @ r_c + x @ k_c + b_c)
    c = gamma_u * c_tilde + gamma_f * c
    a = gamma_o * np.tanh(c)
    return a, [a, c]


STEPS = {
    "simple_rnn": step_simple_rnn,
    "gru": step_gru,
    "lstm": step_lstm,
    "minimal_gru": step_minimal_gru,
    "peephole_lstm": step_peephole_lstm,
}
N_STATES = {"simple_rnn": 1, "gru": 1, "lstm": 2, "minimal_gru": 1, "peephole_lstm": 2}


def cell_weights(layer) -> dict[str, np.ndarray]:
    """A recurrent layer's cell weights by short name (`kernel`, `bias`, ...), as float64 arrays."""
    return {v.name: np.asarray(v.numpy(), dtype=np.float64) for v in layer.cell.weights}


def run(kind: str, x: np.ndarray, w: dict[str, np.ndarray], initial: list[np.ndarray] | None = None):
    """Runs `kind` over x (batch, time, input_dim) from zero (or `initial`) states.

    Returns (outputs (batch, time, units), final states list), all float64.
    """
    x = np.asarray(x, dtype=np.float64)
    units = w["recurrent_kernel"].shape[0]
    states = initial or [np.zeros((x.shape[0], units)) for _ in range(N_STATES[kind])]
    outputs = []
    for t in range(x.shape[1]):
        out, states = STEPS[kind](x[:, t], states, w)
        outputs.append(out)
    return np.stack(outputs, axis=1), states
