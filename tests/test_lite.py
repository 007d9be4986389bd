"""The int8 engine (`textgen.lite`): the sample loop converted to TFLite with int8 weights."""

from __future__ import annotations

import json
import threading
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import cli
from textgen.export import SIGNATURE_FILE, TFLITE_FILE, export_char_tflite
from textgen.lite import LiteError, LiteSampleLoop, _interpreter, convert_step, nats_per_char
from textgen.sampling import CharLMCore, Sampler, SamplingError, SamplingParams

from textgen.config import CharLMConfig, RNNConfig
from textgen.models import build_char_lm
from tests.conftest import require
from tests.test_sampling import RIG_VOCAB, rigged_dir, rigged_model  # noqa: F401 - fixture

TEXT = "abc defg\nbad cafe\ngag bee\n" * 8


def random_model(kind: str, layers: int = 2, seed: int = 0) -> keras.Model:
    """Big enough to be quantised: the converter leaves weights under 1,024 elements in float32,
    so units 48 (recurrent kernels of 48 x 144 for a GRU) rather than test_sampling's 8."""
    keras.utils.set_random_seed(seed)
    model = build_char_lm(CharLMConfig(rnn=RNNConfig(cell=kind, units=48, layers=layers), embedding_dim=16),
                          list("abcdefg \n"))
    for w in model.weights:  # larger weights than the initialisers give: a varied greedy path
        w.assign(w.numpy() * 2.0)
    return model


@pytest.fixture(scope="module")
def int8_gru():
    return Sampler(random_model("gru"), precision="int8", chunk_size=16)


def test_rigged_greedy_and_unk_rules_hold_with_int8_weights():
    sampler = Sampler(rigged_model(unk_bias=100.0), precision="int8")  # [UNK] has by far the largest logit
    assert sampler.generate("a", SamplingParams(length=10, temperature=0)) == ["bcdefghabc"]
    assert sampler.generate("xyz\u4e2d", SamplingParams(length=3, temperature=0)) == ["cde"]
    for ids in sampler.stream_ids(["a", "\u00e9"], SamplingParams(length=40, temperature=50.0, seed=3)):
        assert (ids > 0).all() and (ids < len(RIG_VOCAB) + 1).all()


def test_int8_seed_reproducible_and_chunking_changes_nothing(int8_gru):
    params = SamplingParams(length=40, temperature=1.1, top_k=5, top_p=0.9, repetition_penalty=1.3,
                            num_samples=3, seed=11)
    first = int8_gru.generate("ab", params)
    assert first == int8_gru.generate("ab", params)
    assert len(set(first)) > 1 and all(len(s) == 40 for s in first)
    assert int8_gru.generate("ab", SamplingParams(**{**params.__dict__, "seed": 12})) != first
    chunks = list(int8_gru.stream("ab", params, chunk_size=32))  # 32 + a last chunk of 8 cut from 32
    assert [len(c[0]) for c in chunks] == [32, 8]
    assert ["".join(c[i] for c in chunks) for i in range(3)] == first


def test_int8_top_k_one_equals_int8_greedy(int8_gru):
    greedy = int8_gru.generate("ab", SamplingParams(length=30, temperature=0))
    assert int8_gru.generate("ab", SamplingParams(length=30, temperature=2.0, top_k=1, seed=4)) == greedy


def test_int8_loop_tracks_the_float32_loop():
    """One chunk from the same primed state: same shapes and dtypes as CharLMCore.sample, logits
    and states of int8 weights close to float32's (quantisation error, not a different model)."""
    sampler = Sampler(random_model("lstm"), chunk_size=8)
    logits, states, seen = sampler.start(["abc"])
    args = (tf.constant(0.0), tf.constant(0), tf.constant(1.0), tf.constant(1.0),
            tf.constant(np.array([0, 0], np.uint32)), tf.constant(0))
    ids32, logits32, states32, _ = sampler.core.sample(1, logits, states, seen, *args)
    ids8, logits8, states8, seen8 = LiteSampleLoop(sampler.core)(1, logits, states, seen, *args)
    assert ids8.shape == (1, 1) and ids8.dtype == np.int32 and seen8.dtype == bool
    assert ids8[0, 0] == ids32.numpy()[0, 0]  # the first pick depends only on the float32 priming
    error = np.abs(logits8 - logits32.numpy()).max()
    assert 0 < error < 0.05 * np.abs(logits32.numpy()).max()  # quantised (not equal), but close
    for a, b in zip(states8, states32):
        assert np.abs(a - b.numpy()).max() < 0.05


def test_step_flatbuffers_score_text_like_keras():
    model = random_model("gru", layers=1)
    core = CharLMCore(model, fuse_embedding=False)
    ids = Sampler(model).codec.encode(TEXT)
    # Keras, teacher forced on the whole text: mean cross-entropy over the non-[UNK] logits.
    logits = keras.ops.convert_to_numpy(model(tf.constant([list(TEXT)])))[0, :-1, 1:].astype(np.float64)
    targets = np.array(ids[1:]) - 1
    keras_nats = float(np.mean(np.log(np.exp(logits).sum(-1)) - logits[np.arange(len(targets)), targets]))
    float32 = nats_per_char(convert_step(core), ids, core.state_sizes)
    int8 = nats_per_char(convert_step(core, int8=True), ids, core.state_sizes)
    assert float32 == pytest.approx(keras_nats, abs=1e-5)
    assert int8 == pytest.approx(keras_nats, rel=0.02) and int8 != float32
    with pytest.raises(LiteError, match="vocabulary"):
        nats_per_char(convert_step(core), [0, 0, 0], core.state_sizes)


def test_int8_sampler_is_thread_safe(int8_gru):
    params = [SamplingParams(length=24, temperature=1.0, seed=s) for s in range(6)]
    expected = [int8_gru.generate("ab", p) for p in params]
    got = [None] * len(params)

    def run(i):
        got[i] = int8_gru.generate("ab", params[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(params))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_bad_precision_is_refused():
    with pytest.raises(SamplingError, match="int8"):
        Sampler(random_model("gru"), precision="int4")
    with pytest.raises(LiteError, match="float32"):
        LiteSampleLoop(CharLMCore(random_model("gru"), precision="bfloat16"))


def test_cli_generate_int8(rigged_dir, capsys):  # noqa: F811 - pytest fixture
    assert cli.main(["generate", str(rigged_dir), "--prompt", "a", "--length", "12", "--temperature", "0",
                     "--precision", "int8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == ["bcdefghabcde"]


def test_exported_step_gives_the_same_logits_under_litert_and_tensorflow(tmp_path):
    """Our flatbuffers run under LiteRT (preferred by `_interpreter`) as under tf.lite.Interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter as LiteRT
    except ImportError:
        LiteRT = None
    require(LiteRT is not None, "ai-edge-litert is not installed (it is in requirements.txt)")
    export_char_tflite(random_model("lstm"), tmp_path, batch_size=2)
    flat = (tmp_path / TFLITE_FILE).read_bytes()
    sizes = json.loads((tmp_path / SIGNATURE_FILE).read_text(encoding="utf-8"))["state_sizes"]
    litert = _interpreter(flat, 1)
    assert isinstance(litert, LiteRT)
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT is its successor
        warnings.simplefilter("ignore")
        tensorflow = tf.lite.Interpreter(model_path=str(tmp_path / TFLITE_FILE), num_threads=1)
    runs = {}
    for name, interpreter in (("litert", litert), ("tensorflow", tensorflow)):
        interpreter.allocate_tensors()
        runner = interpreter.get_signature_runner()
        states = {f"state_{i}": np.zeros((2, n), np.float32) for i, n in enumerate(sizes)}
        logits = []
        for t in range(12):  # two rows of ids, the states carried from step to step
            out = runner(ids=np.array([1 + t % 9, 9 - t % 9], np.int32), **states)
            logits.append(out["logits"])
            states = {f"state_{i}": out[f"new_state_{i}"] for i in range(len(sizes))}
        runs[name] = np.stack(logits)  # (time, batch, vocab)
    assert runs["litert"].shape == (12, 2, 10) and np.abs(runs["litert"]).max() > 0.1  # real logits
    np.testing.assert_allclose(runs["litert"], runs["tensorflow"], rtol=1e-6, atol=1e-6)
