"""Model directories: round trip, clear errors for missing or damaged files, atomic saves."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from textgen.artifacts import (
    CONFIG_FILE,
    METADATA_FILE,
    MODEL_FILE,
    ModelDirError,
    load_model_dir,
    save_model_dir,
)
from textgen.config import CharLMConfig, RNNConfig, SentimentConfig, save_config
from textgen.errors import TextgenError
from textgen.models import adapt_word_vocabulary, build_char_lm, build_sentiment_model

VOCAB = list("abc \n")
LM_CONFIG = CharLMConfig(rnn=RNNConfig(cell="peephole_lstm", units=4, layers=2), embedding_dim=3)


def randomise(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])


@pytest.fixture()
def lm():
    model = build_char_lm(LM_CONFIG, VOCAB)
    randomise(model)
    return model


@pytest.fixture()
def saved(tmp_path, lm):
    return save_model_dir(tmp_path / "model", lm, LM_CONFIG, {"dataset": "none", "metrics": {"bpc": 4.5}})


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_char_lm_round_trip(saved, lm):
    assert listing(saved) == [CONFIG_FILE, METADATA_FILE, MODEL_FILE]
    loaded = load_model_dir(saved)
    assert loaded.config == LM_CONFIG and loaded.task == "charlm"
    assert loaded.metadata == {"dataset": "none", "metrics": {"bpc": 4.5}, "task": "charlm", "vocabulary": VOCAB}
    x = np.array([list("ab c\nzz")])  # "z" is unknown
    np.testing.assert_array_equal(np.asarray(loaded.model(x)), np.asarray(lm(x)))


def test_sentiment_round_trip(tmp_path):
    cfg = SentimentConfig(rnn=RNNConfig(cell="minimal_gru", units=3, bidirectional=True), max_tokens=20,
                          sequence_length=6, embedding_dim=2)
    model = build_sentiment_model(cfg, adapt_word_vocabulary(cfg, ["good film", "bad film", "fine plot"]))
    randomise(model, 1)
    out = save_model_dir(tmp_path / "s", model, cfg, {})
    loaded = load_model_dir(out)
    assert loaded.config == cfg and loaded.task == "sentiment" and loaded.metadata == {"task": "sentiment"}
    texts = np.array(["good plot", "awful film!", ""])
    for head in ("polarity", "valence"):
        np.testing.assert_array_equal(np.asarray(loaded.model(texts)[head]), np.asarray(model(texts)[head]))


def test_resave_overwrites_and_leaves_no_temporary_files(saved, lm):
    (saved / "history.json").write_text("{}")  # other files in the folder are kept
    randomise(lm, seed=7)
    save_model_dir(saved, lm, LM_CONFIG, {"dataset": "again"})
    assert listing(saved) == sorted([CONFIG_FILE, METADATA_FILE, MODEL_FILE, "history.json"])
    loaded = load_model_dir(saved)
    assert loaded.metadata["dataset"] == "again"
    x = np.array([list("abc")])
    np.testing.assert_array_equal(np.asarray(loaded.model(x)), np.asarray(lm(x)))


def test_failed_save_keeps_the_old_model(saved, lm, monkeypatch):
    before = (saved / MODEL_FILE).read_bytes()

    def crash(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a model")  # a partial write, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(lm, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model_dir(saved, lm, LM_CONFIG, {})
    assert (saved / MODEL_FILE).read_bytes() == before
    assert listing(saved) == [CONFIG_FILE, METADATA_FILE, MODEL_FILE]  # the temporary file is gone
    load_model_dir(saved)


def test_missing_directory_and_files(tmp_path, saved):
    with pytest.raises(ModelDirError, match="does not exist"):
        load_model_dir(tmp_path / "nowhere")
    with pytest.raises(ModelDirError, match="is a file; give the model directory"):
        load_model_dir(saved / MODEL_FILE)
    for name in (MODEL_FILE, CONFIG_FILE):
        broken = tmp_path / f"no_{name}"
        broken.mkdir()
        for other in (MODEL_FILE, CONFIG_FILE, METADATA_FILE):
            if other != name:
                (broken / other).write_bytes((saved / other).read_bytes())
        with pytest.raises(ModelDirError, match=f"not a textgen model directory: missing {name}"):
            load_model_dir(broken)
    assert issubclass(ModelDirError, TextgenError)


def test_metadata_is_optional(saved):
    (saved / METADATA_FILE).unlink()
    assert load_model_dir(saved).metadata == {}


def test_truncated_model_file_gives_a_clear_error(saved):
    data = (saved / MODEL_FILE).read_bytes()
    (saved / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelDirError, match=r"model.keras is truncated or corrupted \(not a .keras zip archive\)"):
        load_model_dir(saved)
    (saved / MODEL_FILE).write_bytes(b"")
    with pytest.raises(ModelDirError, match="truncated or corrupted"):
        load_model_dir(saved)


def test_foreign_zip_gives_a_one_line_error(saved):
    with zipfile.ZipFile(saved / MODEL_FILE, "w") as z:
        z.writestr("notes.txt", "not a model")
    with pytest.raises(ModelDirError, match=r"cannot load .*model.keras: ") as info:
        load_model_dir(saved)
    assert "\n" not in str(info.value)


def test_damaged_json_files(saved):
    (saved / METADATA_FILE).write_text("{broken")
    with pytest.raises(ModelDirError, match="metadata.json is not valid JSON"):
        load_model_dir(saved)
    (saved / METADATA_FILE).write_bytes(b"\xff\xfe{}")  # not UTF-8
    with pytest.raises(ModelDirError, match="metadata.json is not valid JSON"):
        load_model_dir(saved)
    (saved / METADATA_FILE).write_text("[1, 2]")
    with pytest.raises(ModelDirError, match="must hold a JSON object"):
        load_model_dir(saved)
    (saved / METADATA_FILE).write_text("{}")
    (saved / CONFIG_FILE).write_text("{broken")
    with pytest.raises(ModelDirError, match="config.json is not valid JSON"):
        load_model_dir(saved)
    (saved / CONFIG_FILE).write_text(json.dumps({"kind": "CharLMConfig", "config": {"rnn": {"unitz": 3}}}))
    with pytest.raises(ModelDirError, match="unknown RNNConfig key"):
        load_model_dir(saved)
    save_config(RNNConfig(), saved / CONFIG_FILE)
    with pytest.raises(ModelDirError, match="holds a RNNConfig, not a model config"):
        load_model_dir(saved)


def test_vocabulary_mismatch_is_refused(saved):
    meta = json.loads((saved / METADATA_FILE).read_text())
    meta["vocabulary"] = list("abd \n")
    (saved / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelDirError, match="vocabulary in metadata.json differs"):
        load_model_dir(saved)


def test_save_refuses_a_file_as_directory_and_a_non_model_config(tmp_path, lm):
    target = tmp_path / "taken"
    target.write_text("precious")
    with pytest.raises(ModelDirError, match="it is a file, not a directory"):
        save_model_dir(target, lm, LM_CONFIG, {})
    assert target.read_text() == "precious"
    with pytest.raises(TypeError, match="CharLMConfig or SentimentConfig"):
        save_model_dir(tmp_path / "x", lm, RNNConfig(), {})


def test_config_that_does_not_describe_the_model_is_refused(saved):
    save_config(CharLMConfig(rnn=RNNConfig(cell="lstm", units=5, layers=2), embedding_dim=3), saved / CONFIG_FILE)
    with pytest.raises(ModelDirError, match=r"config.json does not describe model.keras \(rnn.cell: config.json "
                                            r"says 'lstm', model.keras has 'peephole_lstm'; rnn.units: .* 5.* 4\)"):
        load_model_dir(saved)
    save_config(CharLMConfig(rnn=RNNConfig(cell="peephole_lstm", units=4, layers=1), embedding_dim=3),
                saved / CONFIG_FILE)
    with pytest.raises(ModelDirError, match=r"rnn.layers: config.json says 1, model.keras has 2"):
        load_model_dir(saved)


def test_sentiment_config_mismatch_is_refused(tmp_path):
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=3, bidirectional=True), max_tokens=20,
                          sequence_length=4, embedding_dim=2)
    out = save_model_dir(tmp_path / "s", build_sentiment_model(cfg, ["", "[UNK]", "good"]), cfg, {})
    save_config(SentimentConfig(rnn=RNNConfig(cell="gru", units=3, bidirectional=False), max_tokens=20,
                                sequence_length=4, embedding_dim=2), out / CONFIG_FILE)
    with pytest.raises(ModelDirError, match=r"rnn.bidirectional: config.json says False, model.keras has True"):
        load_model_dir(out)


def test_metadata_task_that_contradicts_the_config_is_refused(saved):
    meta = json.loads((saved / METADATA_FILE).read_text(encoding="utf-8"))
    meta["task"] = "sentiment"  # beside a CharLMConfig
    (saved / METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelDirError, match="metadata.json says task 'sentiment'.*CharLMConfig"):
        load_model_dir(saved)
