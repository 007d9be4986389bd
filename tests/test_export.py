"""SavedModel and TFLite exports: every signature, called in a fresh process that cannot import
textgen or Keras, matches the Keras models and the Sampler; `saved_model_cli` lists the contract."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import cli
from textgen.artifacts import save_model_dir
from textgen.config import CharLMConfig, RNNConfig, SentimentConfig
from textgen.export import CHAR_SIGNATURES, SENTIMENT_SIGNATURES, ExportError, export_model_dir
from textgen.inference import THRESHOLD, SentimentPredictor
from textgen.models import adapt_word_vocabulary, build_char_lm, build_sentiment_model, build_step_model, initial_states
from textgen.sampling import Sampler, SamplingParams

VOCAB = list("abcdefg \n")
# An empty prompt, characters outside the vocabulary, and one prompt twice with different seeds.
PROMPTS = ["ab", "", "x\U0001f600g", "ab"]
NUM_CHARS = 20
ROWS = {"temperature": [0.0, 1.3, 0.7, 1.0], "seed": [3, 7, 2**63 - 1, 4], "top_k": [0, 3, 5, 1],
        "top_p": [1.0, 0.9, 0.5, 1.0], "repetition_penalty": [1.0, 1.3, 2.0, 0.8]}
SCALAR = {"temperature": 1.3, "seed": 7}
TEXTS = ["a great film", "", "awful awful", "日本語"]
IDS = [[1, 2, 3, 0, 9], [9, 8, 7, 6, 5]]  # (batch 2, time 5), id 0 = [UNK]
UNITS = 8  # peephole_lstm, 2 layers: states [h, c] per layer
FRESH = Path(__file__).with_name("load_in_fresh_process.py")


def char_contract(units: int, n_states: int, vocab: int) -> dict:
    """The character SavedModel's signatures: {name: {"inputs"|"outputs": {tensor: [dtype, shape]}}}."""
    rows = lambda dtype: [dtype, [-1]]  # noqa: E731 - (batch,)
    states = {f"state_{i}": ["float32", [-1, units]] for i in range(n_states)}
    generate = {"inputs": {"prompt": rows("string"), "num_chars": ["int32", []], "temperature": rows("float32"),
                           "seed": rows("int64")}, "outputs": {"text": rows("string")}}
    full = {"inputs": {**generate["inputs"], "top_k": rows("int32"), "top_p": rows("float32"),
                       "repetition_penalty": rows("float32")}, "outputs": generate["outputs"]}
    return {"serving_default": generate, "generate": generate, "generate_full": full,
            "step": {"inputs": {"ids": ["int32", [-1, -1]], **states},
                     "outputs": {"logits": ["float32", [-1, -1, vocab]], **states}},
            "zero_states": {"inputs": {"batch": ["int32", []]}, "outputs": states},
            "vocabulary": {"inputs": {}, "outputs": {"vocabulary": ["string", [vocab]]}}}


def sentiment_contract(valence: bool) -> dict:
    outputs = {"p_positive": ["float32", [-1]], "label": ["string", [-1]]}
    if valence:
        outputs["valence"] = ["float32", [-1]]
    signature = {"inputs": {"text": ["string", [-1]]}, "outputs": outputs}
    return {"classify": signature, "serving_default": signature}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(3)
    char_cfg = CharLMConfig(rnn=RNNConfig(cell="peephole_lstm", units=UNITS, layers=2), embedding_dim=4)
    char = build_char_lm(char_cfg, VOCAB)
    for w in char.weights:
        w.assign(w.numpy() * 3.0)
    save_model_dir(root / "char", char, char_cfg, {})
    # The shipped IMDB model's shape: words then word pairs, max-and-mean pooled (custom layer).
    words = adapt_word_vocabulary(SentimentConfig(max_tokens=30, ngrams=2), ["a great film", "awful plot", "fine"])
    sent_cfg = SentimentConfig(rnn=RNNConfig(cell="minimal_gru", units=6, bidirectional=True), max_tokens=30,
                               sequence_length=12, embedding_dim=4, ngrams=2, pooling="max_mean")
    sent = build_sentiment_model(sent_cfg, words)
    plain_cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), max_tokens=30, sequence_length=12,
                                embedding_dim=4, ngrams=2, valence_head=False)  # no valence head
    plain = build_sentiment_model(plain_cfg, words)
    for model in (sent, plain):  # larger weights: scores on both sides of THRESHOLD
        for w in model.weights:
            w.assign(w.numpy() * 4.0)
    save_model_dir(root / "sent", sent, sent_cfg, {})
    save_model_dir(root / "plain", plain, plain_cfg, {})
    export_model_dir(root / "char", root / "char_sm")
    export_model_dir(root / "char", root / "char_tfl", fmt="tflite", batch_size=2)
    export_model_dir(root / "sent", root / "sent_sm")
    export_model_dir(root / "plain", root / "plain_sm")
    spec = {"char": str(root / "char_sm"), "tflite": str(root / "char_tfl" / "model.tflite"),
            "tflite_signature": str(root / "char_tfl" / "signature.json"),
            "sentiment": {"valence": str(root / "sent_sm"), "plain": str(root / "plain_sm")},
            "prompts": PROMPTS, "num_chars": NUM_CHARS, "rows": ROWS, "scalar": SCALAR, "texts": TEXTS, "ids": IDS}
    (root / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, str(FRESH), "--exports", str(root / "spec.json")], capture_output=True,
                         text=True, cwd=root, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"root": root, "char": char, "sent": sent, "plain": plain,
            "out": json.loads(run.stdout.strip().splitlines()[-1])}


@pytest.mark.slow
def test_exports_load_without_textgen_or_keras(exported):
    out = exported["out"]
    assert out["loaded_blocked"] == [] and out["textgen_blocked"] is True
    assert out["vocabulary"] == out["attribute_vocabulary"] == ["[UNK]"] + VOCAB
    assert out["attribute_batch_sizes"] == [1, 5]  # any batch size (tensorflow#56121)


@pytest.mark.slow
def test_signatures_have_named_inputs_and_outputs(exported):
    signatures = exported["out"]["signatures"]
    assert signatures["char"] == char_contract(UNITS, 4, len(VOCAB) + 1)
    assert set(signatures["char"]) == set(CHAR_SIGNATURES)
    assert signatures["sentiment_valence"] == sentiment_contract(valence=True)
    assert signatures["sentiment_plain"] == sentiment_contract(valence=False)
    assert set(signatures["sentiment_plain"]) == set(SENTIMENT_SIGNATURES)


def sampler_alone(sampler: Sampler, row: int, **params) -> str:
    """Row `row` of ROWS run through the Sampler as a request of its own (batch 1)."""
    params = {"temperature": ROWS["temperature"][row], "seed": ROWS["seed"][row], **params}
    return sampler.generate(PROMPTS[row], SamplingParams(length=NUM_CHARS, **params))[0]


@pytest.mark.slow
def test_generate_signature_row_equals_the_sampler_alone(exported):
    out = exported["out"]
    sampler = Sampler(exported["char"])
    expected = [sampler_alone(sampler, r) for r in range(len(PROMPTS))]
    assert out["generate"] == expected
    assert len(set(expected[1:])) == 3 and expected[0] != expected[3]  # rows really differ (seeds, greedy)
    assert out["serving_default"] == expected
    assert out["generate_reversed"] == expected[::-1]  # a row's text does not depend on its place
    assert out["attribute_rows"] == expected


@pytest.mark.slow
def test_generate_full_signature_row_equals_the_sampler_alone(exported):
    sampler = Sampler(exported["char"])
    expected = [sampler_alone(sampler, r, top_k=ROWS["top_k"][r], top_p=ROWS["top_p"][r],
                              repetition_penalty=ROWS["repetition_penalty"][r]) for r in range(len(PROMPTS))]
    assert exported["out"]["generate_full"] == expected
    assert expected != exported["out"]["generate"]  # the filters and penalties changed some rows


@pytest.mark.slow
def test_generate_refuses_out_of_range_inputs(exported):
    errors = exported["out"]["errors"]
    assert "seed must be in [0, 2**63-1]" in errors["seed"]
    assert "temperature must have one value per prompt" in errors["temperature"]
    assert "num_chars must be in [0, 100000]" in errors["num_chars"]
    assert "top_p must be in (0, 1]" in errors["top_p"]


@pytest.mark.slow
def test_generate_attribute_scalar_seed_is_one_request(exported):
    """The earlier Python API: one scalar seed makes the batch one request (row r = sample r)."""
    sampler = Sampler(exported["char"])
    ids = next(sampler.stream_ids(PROMPTS, SamplingParams(length=NUM_CHARS, **SCALAR)))
    expected = [sampler.codec.decode(row) for row in ids]
    assert exported["out"]["attribute_scalar"] == exported["out"]["attribute_scalar_tensors"] == expected
    assert expected[0] != expected[3]  # the same prompt, two lanes of one request


@pytest.mark.slow
def test_step_and_zero_states_signatures_and_tflite_equal_keras(exported):
    out = exported["out"]
    model = exported["char"]
    step = build_step_model(model)
    expected = step([np.array(IDS, "int32"), *initial_states(model, 2)])[0].numpy()  # (2, 5, vocab)
    assert out["zero_states"] == {f"state_{i}": [[2, UNITS], 0.0] for i in range(4)}
    for key in ("step_logits", "step_split_logits", "attribute_step_logits"):
        np.testing.assert_allclose(np.array(out[key]), expected, atol=1e-5, rtol=1e-5, err_msg=key)
    assert out["step_states_equal"] is True  # states fed back by name continue the sequence exactly
    tflite = np.transpose(np.array(out["tflite_logits"]), (1, 0, 2))  # (time, batch, v) -> (batch, time, v)
    np.testing.assert_allclose(tflite, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["valence", "plain"])
def test_sentiment_signatures_equal_keras(exported, key):
    model = exported["sent" if key == "valence" else "plain"]
    served = exported["out"]["sentiment"][key]
    assert served["classify"] == served["serving_default"]
    got = served["classify"]
    expected = model(tf.constant(TEXTS))
    np.testing.assert_allclose(got["p_positive"], expected["polarity"].numpy()[:, 0], atol=1e-6)
    if key == "valence":
        np.testing.assert_allclose(got["valence"], expected["valence"].numpy()[:, 0], atol=1e-5)
    else:
        assert "valence" not in got
    rows = SentimentPredictor(model).predict(TEXTS)
    np.testing.assert_allclose(got["p_positive"], [r["p_positive"] for r in rows], atol=1e-6)
    assert got["label"] == [r["label"] for r in rows]
    assert got["label"] == ["positive" if p >= THRESHOLD else "negative" for p in got["p_positive"]]
    assert set(got["label"]) == {"positive", "negative"}  # the weights put the texts on both sides


def saved_model_cli_contract(path) -> dict:
    """`saved_model_cli show --all --dir path` parsed: {signature: {"inputs"|"outputs": {name: [dtype, shape]}}}."""
    cli_path = Path(sys.executable).with_name("saved_model_cli")  # installed with tensorflow
    run = subprocess.run([str(cli_path), "show", "--all", "--dir", str(path)], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    dtypes = {"DT_STRING": "string", "DT_INT32": "int32", "DT_INT64": "int64", "DT_FLOAT": "float32"}
    found, current, tensor = {}, None, None
    for line in run.stdout.splitlines():
        if m := re.match(r"signature_def\['(\w+)'\]:", line):
            current = found.setdefault(m[1], {"inputs": {}, "outputs": {}})
        elif m := re.match(r"\s+(inputs|outputs)\['(\w+)'\] tensor_info:", line):
            tensor = current[m[1]].setdefault(m[2], [])
        elif m := re.match(r"\s+dtype: (\w+)", line):
            tensor.append(dtypes.get(m[1], m[1]))
        elif m := re.match(r"\s+shape: \(([-\d, ]*)\)", line):
            tensor.append([int(d) for d in m[1].replace(" ", "").split(",") if d])
        elif line.startswith("Concrete Functions:"):  # the Python attributes follow: not signatures
            break
    found.pop("__saved_model_init_op", None)
    return found


@pytest.mark.slow
def test_saved_model_cli_lists_every_signature(exported):
    root = exported["root"]
    assert saved_model_cli_contract(root / "char_sm") == char_contract(UNITS, 4, len(VOCAB) + 1)
    assert saved_model_cli_contract(root / "sent_sm") == sentiment_contract(valence=True)
    assert saved_model_cli_contract(root / "plain_sm") == sentiment_contract(valence=False)


def test_export_refuses_to_overwrite_and_bad_requests(exported, capsys):
    root = exported["root"]
    keep = root / "occupied"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ExportError, match="not empty"):
        export_model_dir(root / "sent", keep)
    assert (keep / "precious.txt").read_text(encoding="utf-8") == "keep me"
    with pytest.raises(ExportError, match="tflite"):
        export_model_dir(root / "sent", root / "nope", fmt="tflite")
    with pytest.raises(ExportError, match="format"):
        export_model_dir(root / "char", root / "nope", fmt="onnx")
    assert not (root / "nope").exists()
    assert cli.main(["export", str(root / "sent"), "--out", str(keep)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert cli.main(["export", str(root / "absent"), "--out", str(root / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["export", str(root / "char"), "--format", "tflite", "--batch-size", "0", "--out",
                     str(root / "x")]) == 2
    assert "batch size" in capsys.readouterr().err
    assert cli.main(["export", str(root / "char"), "--format", "tflite", "--batch-size", "1000000000", "--out",
                     str(root / "x")]) == 2  # no real request; would try to allocate gigabytes of states
    assert "batch size must be an integer in [1, 65536]" in capsys.readouterr().err
    assert not (root / "x").exists()


@pytest.mark.slow
def test_export_overwrite_replaces_atomically(exported, capsys):
    root = exported["root"]
    target = root / "replace_me"
    assert cli.main(["export", str(root / "char"), "--out", str(target)]) == 0  # a SavedModel first
    assert (target / "saved_model.pb").is_file() and (target / ".textgen.json").is_file()
    assert cli.main(["export", str(root / "char"), "--format", "tflite", "--out", str(target), "--overwrite"]) == 0
    assert sorted(p.name for p in target.iterdir()) == [".textgen.json", "model.tflite", "signature.json"]
    assert not [p for p in root.iterdir() if p.name.startswith(".replace_me")]  # no temporary left behind
    assert cli.main(["export", str(root / "char"), "--format", "tflite"]) == 0  # default --out beside the model
    assert (root / "char-tflite" / "model.tflite").is_file()
