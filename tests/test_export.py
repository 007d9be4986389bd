"""SavedModel and TFLite exports load in a fresh process without textgen and match the Keras models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import cli
from textgen.artifacts import save_model_dir
from textgen.config import CharLMConfig, RNNConfig, SentimentConfig
from textgen.export import ExportError, export_model_dir
from textgen.inference import SentimentPredictor
from textgen.models import adapt_word_vocabulary, build_char_lm, build_sentiment_model, build_step_model, initial_states
from textgen.sampling import Sampler, SamplingParams

VOCAB = list("abcdefg \n")
PROMPTS = ["ab", "", "x\U0001f600g"]  # an empty prompt and characters outside the vocabulary
TEXTS = ["a great film", "", "awful awful", "日本語"]
IDS = [[1, 2, 3, 0, 9], [9, 8, 7, 6, 5]]  # (batch 2, time 5), id 0 = [UNK]

# Runs in a fresh interpreter: TensorFlow only. Prints one JSON object.
LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    spec = json.load(open(sys.argv[1]))
    out = {}
    char = tf.saved_model.load(spec["char"])
    prompts = tf.constant(spec["prompts"])
    out["greedy"] = [s.decode() for s in char.generate(prompts, 20, 0.0, 3).numpy()]
    out["sampled"] = [s.decode() for s in char.generate(prompts, 20, 1.3, 7).numpy()]
    served = char.signatures["serving_default"](
        prompt=prompts, num_chars=tf.constant(5), temperature=tf.constant(0.0), seed=tf.constant(0))
    out["signature"] = [s.decode() for s in served["output_0"].numpy()]
    out["batch_sizes"] = [int(char.generate(tf.constant(["ab"] * n), 4, 1.0, 1).shape[0]) for n in (1, 5)]
    out["vocabulary"] = [s.decode() for s in char.vocabulary().numpy()]
    ids = tf.constant(spec["ids"], tf.int32)
    logits, states = char.step(ids, char.zero_states(tf.shape(ids)[0]))
    out["step_logits"] = logits.numpy().tolist()
    interp = tf.lite.Interpreter(model_path=spec["tflite"])
    runner = interp.get_signature_runner()
    sig = json.load(open(spec["tflite_signature"]))
    states = {f"state_{i}": np.zeros((2, n), np.float32) for i, n in enumerate(sig["state_sizes"])}
    tfl = []
    for t in range(ids.shape[1]):
        res = runner(ids=np.array(spec["ids"], np.int32)[:, t], **states)
        tfl.append(res["logits"].tolist())
        states = {f"state_{i}": res[f"new_state_{i}"] for i in range(len(sig["state_sizes"]))}
    out["tflite_logits"] = tfl
    sent = tf.saved_model.load(spec["sentiment"])
    res = sent.signatures["serving_default"](text=tf.constant(spec["texts"]))
    out["p_positive"] = res["p_positive"].numpy().tolist()
    out["valence"] = res["valence"].numpy().tolist()
    out["textgen_imported"] = any(m == "textgen" or m.startswith("textgen.") for m in sys.modules)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(3)
    char_cfg = CharLMConfig(rnn=RNNConfig(cell="peephole_lstm", units=8, layers=2), embedding_dim=4)
    char = build_char_lm(char_cfg, VOCAB)
    for w in char.weights:
        w.assign(w.numpy() * 3.0)
    save_model_dir(root / "char", char, char_cfg, {})
    # The shipped IMDB model's shape: words then word pairs, max-and-mean pooled (custom layer).
    sent_cfg = SentimentConfig(rnn=RNNConfig(cell="minimal_gru", units=6, bidirectional=True), max_tokens=30,
                               sequence_length=12, embedding_dim=4, ngrams=2, pooling="max_mean")
    sent = build_sentiment_model(sent_cfg, adapt_word_vocabulary(sent_cfg, ["a great film", "awful plot", "fine"]))
    save_model_dir(root / "sent", sent, sent_cfg, {})
    export_model_dir(root / "char", root / "char_sm")
    export_model_dir(root / "char", root / "char_tfl", fmt="tflite", batch_size=2)
    export_model_dir(root / "sent", root / "sent_sm")
    spec = {"char": str(root / "char_sm"), "tflite": str(root / "char_tfl" / "model.tflite"),
            "tflite_signature": str(root / "char_tfl" / "signature.json"), "sentiment": str(root / "sent_sm"),
            "prompts": PROMPTS, "texts": TEXTS, "ids": IDS}
    (root / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", LOADER, str(root / "spec.json")], capture_output=True, text=True,
                         cwd=root, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"root": root, "char": char, "sent": sent, "out": json.loads(run.stdout.strip().splitlines()[-1])}


@pytest.mark.slow
def test_exports_load_without_textgen(exported):
    assert exported["out"]["textgen_imported"] is False
    assert exported["out"]["vocabulary"] == ["[UNK]"] + VOCAB
    assert exported["out"]["batch_sizes"] == [1, 5]  # any batch size (tensorflow#56121)


@pytest.mark.slow
def test_exported_generate_equals_compiled_sampler(exported):
    sampler = Sampler(exported["char"])
    codec = sampler.codec
    for key, params in (("greedy", SamplingParams(length=20, temperature=0.0, seed=3)),
                        ("sampled", SamplingParams(length=20, temperature=1.3, seed=7))):
        ids = next(sampler.stream_ids(PROMPTS, params))
        assert exported["out"][key] == [codec.decode(row) for row in ids]
    assert exported["out"]["signature"] == [g[:5] for g in exported["out"]["greedy"]]


@pytest.mark.slow
def test_exported_step_and_tflite_equal_keras(exported):
    model = exported["char"]
    step = build_step_model(model)
    expected = step([np.array(IDS, "int32"), *initial_states(model, 2)])[0].numpy()  # (2, 5, vocab)
    np.testing.assert_allclose(np.array(exported["out"]["step_logits"]), expected, atol=1e-5, rtol=1e-5)
    tflite = np.transpose(np.array(exported["out"]["tflite_logits"]), (1, 0, 2))  # (time, batch, v) -> (batch, time, v)
    np.testing.assert_allclose(tflite, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_exported_sentiment_equals_keras(exported):
    expected = exported["sent"](tf.constant(TEXTS))
    np.testing.assert_allclose(exported["out"]["p_positive"], expected["polarity"].numpy()[:, 0], atol=1e-6)
    np.testing.assert_allclose(exported["out"]["valence"], expected["valence"].numpy()[:, 0], atol=1e-5)
    rows = SentimentPredictor(exported["sent"]).predict(TEXTS)
    np.testing.assert_allclose(exported["out"]["p_positive"], [r["p_positive"] for r in rows], atol=1e-6)


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
