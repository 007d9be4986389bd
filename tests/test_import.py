"""Importing a user's Keras character model: logit parity, generation, fresh-process load, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from textgen import cli
from textgen.artifacts import load_model_dir
from textgen.importer import ImportModelError, import_char_model, read_vocabulary
from textgen.sampling import Sampler, SamplingParams

VOCAB = sorted(set("\n !',.:;?ABCabc"))  # the tutorial's vocab = sorted(set(text))
TEXT = ["ABC: abc, cab!\n", "c'a?;b.b"]


def tutorial_functional(rnn: str = "gru", vocab_size: int = len(VOCAB) + 1) -> keras.Model:
    """ids -> Embedding -> RNN(return_sequences) -> Dense, as the tutorial trains it (functional form)."""
    layer = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "simple_rnn": keras.layers.SimpleRNN}[rnn]
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, 6)(ids)
    x = layer(12, return_sequences=True)(x)
    return keras.Model(ids, keras.layers.Dense(vocab_size)(x))


def tutorial_sequential_lstm() -> keras.Model:
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(len(VOCAB) + 1, 5),
        keras.layers.LSTM(7, return_sequences=True),
        keras.layers.Dropout(0.2),
        keras.layers.LSTM(7, return_sequences=True),
        keras.layers.Dense(len(VOCAB) + 1),
    ])
    return model


def ids_of(texts: list[str]) -> np.ndarray:
    index = {c: i + 1 for i, c in enumerate(VOCAB)}
    width = max(map(len, texts))
    return np.array([[index.get(c, 0) for c in t] + [0] * (width - len(t)) for t in texts], "int32")


def chars_of(texts: list[str]) -> np.ndarray:
    width = max(map(len, texts))
    return np.array([list(t) + [""] * (width - len(t)) for t in texts])


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("import")
    keras.utils.set_random_seed(5)
    vocab_json = root / "vocab.json"
    vocab_json.write_text(json.dumps(["[UNK]"] + VOCAB), encoding="utf-8")  # ids_from_chars.get_vocabulary()
    vocab_txt = root / "vocab.txt"  # one per line, newline written as the escape \n
    vocab_txt.write_text("\n".join(json.dumps(c)[1:-1] for c in VOCAB) + "\n", encoding="utf-8")
    users = {"gru": (tutorial_functional("gru"), vocab_json), "lstm2": (tutorial_sequential_lstm(), vocab_txt),
             "simple_rnn": (tutorial_functional("simple_rnn"), vocab_json)}
    out = {}
    for name, (model, vocab) in users.items():
        model.save(root / f"{name}.keras")
        import_char_model(root / f"{name}.keras", vocab, root / f"{name}_dir")
        out[name] = (model, root / f"{name}_dir")
    return root, out


def test_read_vocabulary_formats(imported):
    root, _ = imported
    assert read_vocabulary(root / "vocab.json") == VOCAB
    assert read_vocabulary(root / "vocab.txt") == VOCAB


def test_imported_logits_equal_the_users_model(imported):
    _, models = imported
    for name, (user, path) in models.items():
        ours = load_model_dir(path).model
        expected = user(ids_of(TEXT)).numpy()
        got = ours(chars_of(TEXT)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=name)


def test_imported_model_generates(imported, capsys):
    _, models = imported
    user, path = models["gru"]
    out = Sampler(load_model_dir(path).model).generate("ABC", SamplingParams(length=5, temperature=0))[0]
    # The user's own model, greedy one character at a time, gives the same text.
    ids = list(ids_of(["ABC"])[0])
    for _ in range(5):
        logits = user(np.array([ids], "int32")).numpy()[0, -1]
        logits[0] = -np.inf
        ids.append(int(np.argmax(logits)))
    assert out == "".join(VOCAB[i - 1] for i in ids[3:])
    assert cli.main(["generate", str(path), "--prompt", "ABC", "--length", "5", "--temperature", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == [out]


@pytest.mark.slow
def test_written_keras_files_load_in_a_fresh_process(imported):
    root, models = imported
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import keras
        import textgen  # registers textgen's cells (the imported models use only built-in layers)
        spec = json.load(open(sys.argv[1]))
        out = {}
        for name, path in spec["models"].items():
            model = keras.models.load_model(path, safe_mode=True)
            out[name] = model(np.array(spec["chars"])).numpy().tolist()
        print(json.dumps(out))
    """)
    spec = {"models": {n: str(p / "model.keras") for n, (_, p) in models.items()}, "chars": chars_of(TEXT).tolist()}
    (root / "keras_spec.json").write_text(json.dumps(spec), encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", script, str(root / "keras_spec.json")], capture_output=True,
                         text=True, cwd=root, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    fresh = json.loads(run.stdout.strip().splitlines()[-1])
    for name, (_, path) in models.items():
        here = load_model_dir(path).model(chars_of(TEXT)).numpy()
        np.testing.assert_array_equal(np.array(fresh[name], "float32"), here, err_msg=name)


class TutorialSubclass(keras.Model):
    """The tutorial's MyModel shape as an unregistered subclass."""

    def __init__(self, vocab_size, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding = keras.layers.Embedding(vocab_size, 4)
        self.gru = keras.layers.GRU(4, return_sequences=True)
        self.dense = keras.layers.Dense(vocab_size)

    def call(self, inputs):
        return self.dense(self.gru(self.embedding(inputs)))

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size}


def _save(model, path):
    model.save(path)
    return path


def test_mismatches_and_unsupported_layers_are_clear_errors(imported, tmp_path, capsys):
    root, _ = imported
    vocab = root / "vocab.json"
    cases = {
        "input_dim": tutorial_functional("gru", vocab_size=len(VOCAB) + 3),
        "unsupported layer": keras.Sequential([keras.Input((None,), dtype="int32"),
                                               keras.layers.Embedding(len(VOCAB) + 1, 4),
                                               keras.layers.Conv1D(4, 3, padding="same"),
                                               keras.layers.Dense(len(VOCAB) + 1)]),
        "return_sequences": keras.Sequential([keras.Input((None,), dtype="int32"),
                                              keras.layers.Embedding(len(VOCAB) + 1, 4), keras.layers.GRU(4),
                                              keras.layers.Dense(len(VOCAB) + 1)]),
        "one kind": keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(len(VOCAB) + 1, 4),
                                      keras.layers.GRU(4, return_sequences=True),
                                      keras.layers.LSTM(4, return_sequences=True),
                                      keras.layers.Dense(len(VOCAB) + 1)]),
        "logits": keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(len(VOCAB) + 1, 4),
                                    keras.layers.GRU(4, return_sequences=True),
                                    keras.layers.Dense(len(VOCAB) + 1, activation="softmax")]),
    }
    for message, model in cases.items():
        path = _save(model, tmp_path / f"{message.replace(' ', '_')}.keras")
        with pytest.raises(ImportModelError, match=message):
            import_char_model(path, vocab, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    # The tutorial's own subclassed MyModel (not registered) cannot be rebuilt in safe mode.
    subclassed = TutorialSubclass(len(VOCAB) + 1)
    subclassed(ids_of(TEXT))
    path = _save(subclassed, tmp_path / "subclassed.keras")
    with pytest.raises(ImportModelError, match="functional or Sequential"):
        import_char_model(path, vocab, tmp_path / "out")
    bad_vocab = tmp_path / "bad.json"
    bad_vocab.write_text('["a", "bc"]', encoding="utf-8")
    with pytest.raises(ImportModelError, match="single characters"):
        import_char_model(root / "gru.keras", bad_vocab, tmp_path / "out")
    with pytest.raises(ImportModelError, match="does not exist"):
        import_char_model(tmp_path / "absent.keras", vocab, tmp_path / "out")
    # An occupied output folder is never overwritten without --overwrite.
    assert cli.main(["import", str(root / "gru.keras"), "--vocab", str(vocab), "--out", str(root / "gru_dir")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert cli.main(["import", str(tmp_path / "input_dim.keras"), "--vocab", str(vocab), "--out",
                     str(tmp_path / "o")]) == 2
    assert "input_dim" in capsys.readouterr().err
    assert cli.main(["import", str(root / "gru.keras"), "--vocab", str(vocab), "--out", str(tmp_path / "ok")]) == 0
    assert load_model_dir(tmp_path / "ok").metadata["task"] == "charlm"
    # Defaults: vocab.json beside the .keras file, output folder = the path without ".keras".
    mine = tmp_path / "defaults"
    mine.mkdir()
    (mine / "my_model.keras").write_bytes((root / "gru.keras").read_bytes())
    (mine / "vocab.json").write_text(vocab.read_text(encoding="utf-8"), encoding="utf-8")
    assert cli.main(["import", str(mine / "my_model.keras")]) == 0
    assert load_model_dir(mine / "my_model").metadata["vocabulary"] == VOCAB
