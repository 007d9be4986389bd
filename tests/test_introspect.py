"""The introspection re-runs each cell's equations; its outputs must equal the Keras model's."""

import numpy as np
import pytest

from textgen.config import CELL_KINDS, CharLMConfig, RNNConfig
from textgen.introspect import MAX_CHARS, trace
from textgen.models import build_char_lm

VOCAB = list("abcdefgh \n")
GATES = {
    "simple_rnn": set(), "gru": {"update", "reset"}, "minimal_gru": {"update"},
    "lstm": {"update", "forget", "output"}, "peephole_lstm": {"update", "forget", "output"},
}


def _randomise(model, seed=0):
    # Non-zero biases and larger weights than the initialisers give, so every gate matters.
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])


@pytest.fixture(scope="module", params=CELL_KINDS)
def model(request):
    m = build_char_lm(CharLMConfig(rnn=RNNConfig(cell=request.param, units=6, layers=2), embedding_dim=5), VOCAB)
    _randomise(m)
    return request.param, m


def test_trace_matches_keras_model(model):
    kind, m = model
    text = "abc defg\nhah 😀é"
    t = trace(m, text)
    logits = np.asarray(m(np.array([list(text)])))[0].astype(np.float64)  # (time, vocab)
    logits[:, 0] = -np.inf
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(t.probs, expected, atol=1e-5)
    assert [layer.kind for layer in t.layers] == [kind, kind]
    for layer in t.layers:
        assert layer.hidden.shape == (len(text), 6)
        assert set(layer.gates) == GATES[kind]
        for g in layer.gates.values():
            assert g.shape == (len(text), 6) and g.min() >= 0 and g.max() <= 1
        assert (layer.cell is not None) == (kind in ("lstm", "peephole_lstm"))


def test_trace_top_guesses_and_unknown_characters(model):
    _, m = model
    text = "ab😀\x07c"
    t = trace(m, text, top_k=3)
    assert t.known == [True, True, False, False, True]
    for t_pos, guesses in enumerate(t.top):
        probs = [p for _, p in guesses]
        assert len(guesses) == 3 and probs == sorted(probs, reverse=True)
        assert all(ch in VOCAB for ch, _ in guesses)  # [UNK] is never a guess
        assert probs[0] == pytest.approx(t.probs[t_pos].max())
    assert t.next_char_prob.shape == (len(text) - 1,)
    assert t.next_char_prob[-1] == pytest.approx(t.probs[3, VOCAB.index("c") + 1])


def test_trace_refuses_empty_and_overlong_text(model):
    _, m = model
    with pytest.raises(ValueError, match="no text"):
        trace(m, "")
    with pytest.raises(ValueError, match="at most"):
        trace(m, "a" * (MAX_CHARS + 1))
