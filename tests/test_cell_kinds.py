"""Every cell kind of `textgen.cell_kinds.REGISTRY` through one harness, with tiny configs.

In the spirit of keras-hub's `run_backbone_test` / `run_model_saving_test`: each kind builds a
tiny char LM (units 6, two layers, vocabulary 9 + [UNK]) with `build_char_lm`, and the same checks
run on all of them: the kind's Keras layer and its identity, `.keras` save/load, the shared step
equations against the Keras layer, the parameter formula, the states, the compiled sampler's core
and the introspection. A new kind is covered by adding it to the registry. (The equations
themselves are checked against independent NumPy in test_cells.py.)
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import cell_kinds, importer
from textgen.cell_kinds import REGISTRY
from textgen.config import CELL_KINDS, CharLMConfig, ConfigError, RNNConfig
from textgen.introspect import trace
from textgen.models import build_char_lm, build_step_model, initial_states, rnn_layers
from textgen.models.rnn import cell_kind, state_sizes
from textgen.sampling import CharLMCore, cell_equations

# True float32 matmuls on Ampere+ GPUs (TF32 would drown the 1e-5 comparisons); no effect on CPU.
tf.config.experimental.enable_tensor_float_32_execution(False)

VOCAB = list("abcdefg \n")  # 9 characters + [UNK] = 10 ids
UNITS, EMBEDDING_DIM, LAYERS = 6, 5, 2
TEXT = "abc defg\nbad cafe"
ATOL = 1e-5  # float32 against float32 computed in another order


@pytest.fixture(scope="module", params=list(REGISTRY))
def tiny(request):
    """(CellKind, tiny char LM with moderate random weights) for each registered kind."""
    spec = REGISTRY[request.param]
    config = CharLMConfig(rnn=RNNConfig(cell=spec.name, units=UNITS, layers=LAYERS), embedding_dim=EMBEDDING_DIM)
    model = build_char_lm(config, VOCAB)
    rng = np.random.default_rng(0)
    # Non-zero biases and larger weights than the initialisers give, so every gate and block matters.
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return spec, model


def _layer_inputs(model: keras.Model) -> list[np.ndarray]:
    """What each recurrent layer reads over TEXT: (1, time, features) float32, per layer."""
    x = model.get_layer("embedding")(np.array([[VOCAB.index(c) + 1 for c in TEXT]]))
    inputs = []
    for layer in rnn_layers(model):
        inputs.append(np.asarray(x))
        x = layer(x)[0]
    return inputs


def test_registry_is_config_cell_kinds():
    assert tuple(REGISTRY) == CELL_KINDS  # config keeps the names TF-free; the registry keeps the rest
    assert all(spec.name == name for name, spec in REGISTRY.items())
    with pytest.raises(ConfigError, match="unknown cell kind 'transformer'"):
        cell_kinds.get("transformer")


def test_backbone(tiny):
    """Builds, runs, names its kind, and its layer config round-trips."""
    spec, model = tiny
    logits = model(np.array([list(TEXT), list(TEXT[::-1])]))
    assert tuple(logits.shape) == (2, len(TEXT), len(VOCAB) + 1)
    assert np.isfinite(np.asarray(logits)).all()
    for layer in rnn_layers(model):
        assert type(layer) is spec.layer_class and type(layer.cell) is spec.cell_class
        assert cell_kind(layer) == cell_kinds.equation_kind(layer) == spec.name
        clone = type(layer).from_config(layer.get_config())
        assert cell_kind(clone) == spec.name and clone.get_config() == layer.get_config()
    # Whole models of Keras built-in layers are what the importer takes.
    assert (importer.KINDS.get(spec.layer_class) == spec.name) == spec.builtin


def test_model_saving(tiny, tmp_path):
    spec, model = tiny
    path = tmp_path / f"{spec.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    batch = np.array([list(TEXT)])
    np.testing.assert_allclose(np.asarray(loaded(batch)), np.asarray(model(batch)), rtol=0, atol=1e-6)
    assert [cell_kind(layer) for layer in rnn_layers(loaded)] == [spec.name] * LAYERS


def test_step_equations_reproduce_the_keras_layer(tiny):
    """`CellKind.step` (the sampler's, the exports' and the introspection's equations) = Keras."""
    spec, model = tiny
    for layer, x in zip(rnn_layers(model), _layer_inputs(model)):
        outputs, *final = (np.asarray(t) for t in layer(x))
        w = cell_kinds.layer_weights(layer)
        in_bias, rec_bias = spec.split_bias(w["bias"])
        peephole = w.get("peephole_kernel")
        x_proj = x @ w["kernel"] + in_bias  # (1, time, blocks·units)
        states = [tf.zeros((1, UNITS))] * spec.states
        for t in range(x.shape[1]):
            step = spec.step(x_proj[:, t], states, w["recurrent_kernel"], tf.matmul, rec_bias, peephole)
            shared = cell_equations(spec.name, x_proj[:, t], states, w["recurrent_kernel"], tf.matmul, rec_bias,
                                    peephole)  # sampling's name for the same equations
            np.testing.assert_array_equal(np.asarray(shared[0]), np.asarray(step.states[0]))
            states = step.states
            np.testing.assert_allclose(np.asarray(states[0]), outputs[:, t], rtol=0, atol=ATOL)
            assert set(step.gates) == set(spec.gates)
        for got, want in zip(states, final):
            np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=ATOL)
    assert np.abs(outputs).max() > 0.3  # the check is meaningful: outputs well away from zero


def test_parameter_count(tiny):
    spec, model = tiny
    for i, layer in enumerate(rnn_layers(model)):
        input_dim = EMBEDDING_DIM if i == 0 else UNITS
        shapes = spec.weight_shapes(input_dim, UNITS)
        assert [tuple(v.shape) for v in layer.cell.weights] == list(shapes.values())
        assert [v.name for v in layer.cell.weights] == list(spec.weight_names)
        assert spec.params(input_dim, UNITS) == layer.count_params()
    vocab_size = len(VOCAB) + 1
    total = vocab_size * EMBEDDING_DIM + spec.params(EMBEDDING_DIM, UNITS) + spec.params(UNITS, UNITS)
    assert total + UNITS * vocab_size + vocab_size == model.count_params()


def test_states(tiny):
    spec, model = tiny
    layer = rnn_layers(model)[0]
    _, *final = layer(np.zeros((1, 3, EMBEDDING_DIM), "float32"))
    assert len(final) == spec.states
    assert state_sizes(layer) == spec.state_sizes(UNITS) == [UNITS] * spec.states
    flat = spec.state_sizes(UNITS) * LAYERS
    assert CharLMCore(model).state_sizes == flat
    assert [s.shape[1] for s in initial_states(model, 1)] == flat
    assert len(build_step_model(model).outputs) == 1 + len(flat)


def test_sampler_core_step_equals_the_keras_step_model(tiny):
    spec, model = tiny
    ids = np.array([[VOCAB.index(c) + 1 for c in "bad"]], "int32")
    out = build_step_model(model)([ids, *initial_states(model, 1)])
    core = CharLMCore(model)
    states = core.zero_states(1)
    for t in range(ids.shape[1]):
        logits, states = core.step(ids[:, t], states)
    np.testing.assert_allclose(logits.numpy(), np.asarray(out[0])[:, -1], rtol=0, atol=ATOL)
    for got, want in zip(states, out[1:]):
        np.testing.assert_allclose(got.numpy(), np.asarray(want), rtol=0, atol=ATOL)


def test_introspection_matches_the_layers(tiny):
    spec, model = tiny
    traced = trace(model, TEXT)
    for layer, x, got in zip(rnn_layers(model), _layer_inputs(model), traced.layers):
        outputs, *final = (np.asarray(t) for t in layer(x))
        assert got.kind == spec.name
        np.testing.assert_allclose(got.hidden, outputs[0], rtol=0, atol=ATOL)
        assert list(got.gates) == list(spec.gates)  # gated kinds expose their gates, in display order
        for gate in got.gates.values():
            assert gate.shape == (len(TEXT), UNITS) and gate.min() >= 0 and gate.max() <= 1
            assert np.ptp(gate) > 0.1  # gates move with the text
        if spec.states > 1:  # c⟨t⟩: its last step is the layer's final cell state
            np.testing.assert_allclose(got.cell[-1], final[1][0], rtol=0, atol=ATOL)
        else:
            assert got.cell is None
