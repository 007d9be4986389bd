"""Importing a user's Keras character model or its weights (the TF tutorial's MyModel): logit parity,
generation, fresh-process load, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import cli
from textgen.artifacts import load_model_dir
from textgen.importer import ImportModelError, import_char_model, read_vocabulary
from textgen.sampling import Sampler, SamplingParams
from textgen.vocab import UNK

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


# --------------------------------------------------------------------------------------------
# The TF tutorial's subclassed MyModel: weights files and TF checkpoints with --cell/--units/...

TUTORIAL_TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
PROBE = ["Speak, citizen!", "hear me"]  # "!" is not in the vocabulary: it reads as [UNK]
KERAS2 = Path(__file__).parent / "data" / "keras2_tutorial"  # written by make_fixture.py there


class MyModel(tf.keras.Model):
    """The tutorial's model as written there, mended where Keras 3 refuses it before training:
    `super().__init__(self)` -> `super().__init__()`, and `get_initial_state` takes the batch size."""

    def __init__(self, vocab_size, embedding_dim, rnn_units):
        super().__init__()
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru = tf.keras.layers.GRU(rnn_units,
                                       return_sequences=True,
                                       return_state=True)
        self.dense = tf.keras.layers.Dense(vocab_size)

    def call(self, inputs, states=None, return_state=False, training=False):
        x = inputs
        x = self.embedding(x, training=training)
        if states is None:
            states = self.gru.get_initial_state(tf.shape(x)[0])
        x, states = self.gru(x, initial_state=states, training=training)
        x = self.dense(x, training=training)

        if return_state:
            return x, states
        else:
            return x


class CellModel(tf.keras.Model):
    """MyModel with the recurrent layer as a parameter (an LSTM returns two states, not one)."""

    def __init__(self, vocab_size, embedding_dim, rnn_units, cell):
        super().__init__()
        layer = {"simple_rnn": tf.keras.layers.SimpleRNN, "lstm": tf.keras.layers.LSTM}[cell]
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.rnn = layer(rnn_units, return_sequences=True, return_state=True)
        self.dense = tf.keras.layers.Dense(vocab_size)

    def call(self, inputs, training=False):
        x = self.embedding(inputs, training=training)
        x = self.rnn(x, training=training)[0]  # (batch, time, units); the final states follow
        return self.dense(x, training=training)


class OneStep(tf.keras.Model):
    """The tutorial's single-step generator, verbatim; the tutorial exports it with
    `tf.saved_model.save(one_step_model, 'one_step')`."""

    def __init__(self, model, chars_from_ids, ids_from_chars, temperature=1.0):
        super().__init__()
        self.temperature = temperature
        self.model = model
        self.chars_from_ids = chars_from_ids
        self.ids_from_chars = ids_from_chars

        # Create a mask to prevent "[UNK]" from being generated.
        skip_ids = self.ids_from_chars(['[UNK]'])[:, None]
        sparse_mask = tf.SparseTensor(
            # Put a -inf at each bad index.
            values=[-float('inf')] * len(skip_ids),
            indices=skip_ids,
            # Match the shape to the vocabulary
            dense_shape=[len(ids_from_chars.get_vocabulary())])
        self.prediction_mask = tf.sparse.to_dense(sparse_mask)

    @tf.function
    def generate_one_step(self, inputs, states=None):
        input_chars = tf.strings.unicode_split(inputs, 'UTF-8')
        input_ids = self.ids_from_chars(input_chars).to_tensor()
        predicted_logits, states = self.model(inputs=input_ids, states=states, return_state=True)
        predicted_logits = predicted_logits[:, -1, :]
        predicted_logits = predicted_logits / self.temperature
        predicted_logits = predicted_logits + self.prediction_mask
        predicted_ids = tf.random.categorical(predicted_logits, num_samples=1)
        predicted_ids = tf.squeeze(predicted_ids, axis=-1)
        predicted_chars = self.chars_from_ids(predicted_ids)
        return predicted_chars, states


def tutorial_ids(texts: list[str], vocab: list[str]) -> np.ndarray:
    """The tutorial's ids_from_chars: StringLookup(vocabulary=vocab, mask_token=None), [UNK] = 0."""
    lookup = tf.keras.layers.StringLookup(vocabulary=vocab, mask_token=None)
    return lookup(tf.strings.unicode_split(texts, "UTF-8")).to_tensor().numpy()  # (batch, time), 0-padded


def chars_from_ids(ids: np.ndarray, vocab_with_unk: list[str]) -> np.ndarray:
    return np.array([[vocab_with_unk[i] if i else UNK for i in row] for row in ids])


def import_cli(source, vocab, out, *flags) -> int:
    return cli.main(["import", str(source), "--vocab", str(vocab), "--out", str(out), *map(str, flags)])


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """Trains the tutorial's model for each cell kind (embedding 8, 16 units) and saves its weights the
    ways a tutorial user can under Keras 3; returns (root, {cell: (model, {form: path})})."""
    root = tmp_path_factory.mktemp("tutorial")
    keras.utils.set_random_seed(11)
    vocab = sorted(set(TUTORIAL_TEXT))
    ids_from_chars = tf.keras.layers.StringLookup(vocabulary=list(vocab), mask_token=None)
    (root / "vocab.json").write_text(json.dumps(ids_from_chars.get_vocabulary()), encoding="utf-8")
    all_ids = ids_from_chars(tf.strings.unicode_split(TUTORIAL_TEXT, "UTF-8"))
    dataset = (tf.data.Dataset.from_tensor_slices(all_ids).batch(11, drop_remainder=True)
               .map(lambda s: (s[:-1], s[1:])).batch(2, drop_remainder=True))
    vocab_size = len(ids_from_chars.get_vocabulary())
    models = {}
    for cell in ("gru", "lstm", "simple_rnn"):
        model = MyModel(vocab_size, 8, 16) if cell == "gru" else CellModel(vocab_size, 8, 16, cell)
        model.compile(optimizer="adam", loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True))
        # The tutorial's callback; Keras 3 accepts only a .weights.h5 name with save_weights_only.
        callback = tf.keras.callbacks.ModelCheckpoint(filepath=str(root / cell / "ckpt_{epoch}.weights.h5"),
                                                      save_weights_only=True)
        model.fit(dataset, epochs=2, callbacks=[callback], verbose=0)
        forms = {"callback": root / cell / "ckpt_2.weights.h5", "save_weights": root / cell / "mine.weights.h5",
                 "checkpoint_write": root / cell / "tf" / "write"}
        model.save_weights(forms["save_weights"])
        tf.train.Checkpoint(model=model).write(str(forms["checkpoint_write"]))
        if cell == "gru":  # with the optimizer the GRU's variables are keyed under optimizer/...
            tf.train.Checkpoint(model=model, optimizer=model.optimizer).save(str(root / cell / "managed" / "ckpt"))
            forms["checkpoint_folder"] = root / cell / "managed"
            chars_from_ids = tf.keras.layers.StringLookup(vocabulary=ids_from_chars.get_vocabulary(), invert=True,
                                                          mask_token=None)
            one_step_model = OneStep(model, chars_from_ids, ids_from_chars)
            one_step_model.generate_one_step(tf.constant(["ROMEO:"]))
            tf.saved_model.save(one_step_model, str(root / cell / "one_step"))
            forms["one_step"] = root / cell / "one_step"
        models[cell] = (model, forms)
    return root, models


def test_keras3_cannot_save_the_tutorial_model_whole(tutorial, tmp_path, capsys):
    """Why weights are the import path: Keras 3.15 refuses the tutorial's forms before or after training."""
    _, models = tutorial
    model, _ = models["gru"]
    with pytest.raises(NotImplementedError, match="get_config"):
        model.save(tmp_path / "my_model.keras")
    assert (tmp_path / "my_model.keras").stat().st_size == 0  # the file it leaves
    with pytest.raises(ValueError, match="weights.h5"):  # the tutorial's "ckpt_{epoch}" prefix
        tf.keras.callbacks.ModelCheckpoint(filepath=str(tmp_path / "ckpt_{epoch}"), save_weights_only=True)
    assert import_cli(tmp_path / "my_model.keras", tutorial[0] / "vocab.json", tmp_path / "out") == 2
    assert "is empty (0 bytes)" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("cell, form", [
    ("gru", "callback"), ("gru", "save_weights"), ("gru", "checkpoint_write"), ("gru", "checkpoint_folder"),
    ("gru", "one_step"),
    ("lstm", "save_weights"), ("lstm", "checkpoint_write"), ("simple_rnn", "callback"),
    ("simple_rnn", "checkpoint_write"),
])
def test_tutorial_weights_import_with_logit_parity(tutorial, tmp_path, capsys, cell, form):
    root, models = tutorial
    model, forms = models[cell]
    out = tmp_path / "imported"
    assert import_cli(forms[form], root / "vocab.json", out, "--cell", cell, "--units", 16, "--embedding-dim", 8) == 0
    assert f"into {out}" in capsys.readouterr().out
    vocab = json.loads((root / "vocab.json").read_text(encoding="utf-8"))
    ids = tutorial_ids(PROBE, vocab[1:])
    imported = load_model_dir(out)
    assert imported.metadata["vocabulary"] == vocab[1:] and imported.config.rnn.cell == cell
    np.testing.assert_allclose(imported.model(chars_from_ids(ids, vocab)).numpy(), model(ids).numpy(), atol=1e-5)
    assert cli.main(["generate", str(out), "--prompt", "Speak", "--length", "8", "--temperature", "0", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["samples"][0]) == 8


def test_imported_tutorial_model_generates_the_users_greedy_text(tutorial, tmp_path, capsys):
    root, models = tutorial
    model, forms = models["gru"]
    out = tmp_path / "imported"
    assert import_cli(forms["save_weights"], root / "vocab.json", out, "--cell", "gru", "--units", 16,
                      "--embedding-dim", 8) == 0
    vocab = json.loads((root / "vocab.json").read_text(encoding="utf-8"))
    # The tutorial's OneStep: one character at a time with the GRU state carried, [UNK] masked.
    ids, states, text = tutorial_ids(["Speak"], vocab[1:]), None, ""
    for _ in range(10):
        logits, states = model(ids, states=states, return_state=True)
        logits = logits.numpy()[0, -1]
        logits[0] = -np.inf
        ids = np.array([[int(np.argmax(logits))]])
        text += vocab[ids[0, 0]]
    capsys.readouterr()
    assert cli.main(["generate", str(out), "--prompt", "Speak", "--length", "10", "--temperature", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == [text]


@pytest.mark.parametrize("source", ["tutorial.h5", "training_checkpoints/ckpt_2", "training_checkpoints",
                                    "training_checkpoints/ckpt_2.index"])
def test_keras2_tutorial_files_import_with_logit_parity(tmp_path, source):
    """Files the tutorial left before Keras 3 (tf-keras 2.21, see tests/data/keras2_tutorial)."""
    expected = np.load(KERAS2 / "expected.npz")
    out = tmp_path / "imported"
    assert import_cli(KERAS2 / source, KERAS2 / "vocab.json", out, "--cell", "gru", "--units", 6,
                      "--embedding-dim", 4) == 0
    vocab = json.loads((KERAS2 / "vocab.json").read_text(encoding="utf-8"))
    got = load_model_dir(out).model(chars_from_ids(expected["ids"], vocab)).numpy()
    np.testing.assert_allclose(got, expected["logits"], atol=1e-5)


def test_keras2_checkpoint_folder_means_its_latest_checkpoint(tmp_path):
    expected = np.load(KERAS2 / "expected.npz")
    vocab = json.loads((KERAS2 / "vocab.json").read_text(encoding="utf-8"))
    assert import_cli(KERAS2 / "training_checkpoints/ckpt_1", KERAS2 / "vocab.json", tmp_path / "epoch1",
                      "--cell", "gru", "--units", 6, "--embedding-dim", 4) == 0
    got = load_model_dir(tmp_path / "epoch1").model(chars_from_ids(expected["ids"], vocab)).numpy()
    assert np.abs(got - expected["logits"]).max() > 1e-3  # epoch 1 is another model than the expected epoch 2


class StackedList(keras.Model):
    """Two LSTMs kept in a Python list (Keras 3 leaves them out of a TF checkpoint's model graph)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.embedding = keras.layers.Embedding(vocab_size, 5)
        self.rnns = [keras.layers.LSTM(7, return_sequences=True) for _ in range(2)]
        self.dense = keras.layers.Dense(vocab_size)

    def call(self, x):
        x = self.embedding(x)
        for rnn in self.rnns:
            x = rnn(x)
        return self.dense(x)


@pytest.mark.slow
def test_stacked_layers_import_in_order(imported, tmp_path, capsys):
    root, _ = imported
    ids = ids_of(TEXT)
    sequential = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(len(VOCAB) + 1, 6),
                                   keras.layers.GRU(9, return_sequences=True), keras.layers.Dropout(0.3),
                                   keras.layers.GRU(9, return_sequences=True), keras.layers.Dense(len(VOCAB) + 1)])
    sequential.save_weights(tmp_path / "seq.weights.h5")  # the Dropout's seed state is stored too
    tf.train.Checkpoint(model=sequential).write(str(tmp_path / "seq_ckpt"))
    for source in ("seq.weights.h5", "seq_ckpt"):
        out = tmp_path / f"{source}_dir"
        assert import_cli(tmp_path / source, root / "vocab.json", out, "--cell", "gru", "--units", 9,
                          "--embedding-dim", 6, "--layers", 2) == 0
        got = load_model_dir(out).model(chars_of(TEXT)).numpy()
        np.testing.assert_allclose(got, sequential(ids).numpy(), atol=1e-5, err_msg=source)
    listed = StackedList(len(VOCAB) + 1)
    listed.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    listed.fit(ids, ids, verbose=0)
    listed.save_weights(tmp_path / "list.weights.h5")
    assert import_cli(tmp_path / "list.weights.h5", root / "vocab.json", tmp_path / "list", "--cell", "lstm",
                      "--units", 7, "--embedding-dim", 5, "--layers", 2) == 0
    np.testing.assert_allclose(load_model_dir(tmp_path / "list").model(chars_of(TEXT)).numpy(), listed(ids).numpy(),
                               atol=1e-5)
    capsys.readouterr()
    tf.train.Checkpoint(model=listed).write(str(tmp_path / "list_ckpt"))
    assert import_cli(tmp_path / "list_ckpt", root / "vocab.json", tmp_path / "list2", "--cell", "lstm",
                      "--units", 7, "--embedding-dim", 5, "--layers", 2) == 2
    assert "holds 0 recurrent layer(s) (none) but --layers is 2; Keras 3 leaves layers kept in a Python list" \
        in capsys.readouterr().err
    assert not (tmp_path / "list2").exists()


def test_weights_errors_are_one_line_and_write_nothing(tutorial, tmp_path, capsys):
    root, models = tutorial
    vocab = root / "vocab.json"
    weights = models["gru"][1]["save_weights"]
    prefix = models["gru"][1]["checkpoint_write"]
    (tmp_path / "notes.txt").write_text("not weights\n", encoding="utf-8")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.zeros(3)
    (tmp_path / "short_vocab.json").write_text(json.dumps(list("abc")), encoding="utf-8")
    broken = tmp_path / "broken"
    shutil.copy(f"{prefix}.index", f"{broken}.index")
    data = Path(f"{prefix}.data-00000-of-00001").read_bytes()
    Path(f"{broken}.data-00000-of-00001").write_bytes(data[: len(data) // 2])
    keras_file = tmp_path / "whole.keras"
    tutorial_functional("gru", vocab_size=len(set(TUTORIAL_TEXT)) + 1).save(keras_file)
    arch = ["--cell", "gru", "--units", 16, "--embedding-dim", 8]
    cases = [
        ((weights, vocab, "--cell", "gru", "--units", 16), "give --embedding-dim"),
        ((weights, vocab), "give --cell, --units, --embedding-dim"),
        ((keras_file, vocab, "--cell", "gru"), "records its architecture; --cell describe a weights file"),
        ((keras_file, vocab, "--layers", 1), "--layers describe a weights file only"),
        ((weights, vocab, *arch[:3], 0, *arch[4:]), "--units must be an integer in [1, inf]; got 0"),
        ((weights, vocab, "--cell", "gru", "--units", 32, "--embedding-dim", 8),
         "gru/cell/kernel has shape (8, 48), but --cell gru --units 32 --embedding-dim 8 --layers 1 with 31 ids "
         "expects (8, 96); the file fits --cell gru --units 16 --embedding-dim 8 --layers 1"),
        ((prefix, vocab, "--cell", "lstm", "--units", 16, "--embedding-dim", 8),
         "model/gru/cell/kernel has shape (8, 48), but --cell lstm"),
        ((weights, vocab, "--cell", "gru", "--units", 16, "--embedding-dim", 4),
         "embedding/embeddings has shape (31, 8), but --cell gru --units 16 --embedding-dim 4 --layers 1 with 31 "
         "ids expects (31, 4)"),
        ((weights, vocab, *arch, "--layers", 2), "holds 1 recurrent layer(s) (gru/cell) but --layers is 2"),
        ((weights, tmp_path / "short_vocab.json", *arch), "3 characters + [UNK] = 4 ids, but the Embedding"),
        ((tmp_path / "notes.txt", vocab, *arch), "neither a .keras model, a Keras weights file"),
        ((tmp_path / "other.h5", vocab, *arch), "not Keras weights"),
        ((broken, vocab, *arch), "cannot read the TF checkpoint"),
        ((tmp_path, vocab, *arch), "folder with neither a TF checkpoint"),
        ((tmp_path / "absent.weights.h5", vocab, *arch), "does not exist"),
    ]
    for (source, vocab_file, *flags), message in cases:
        out = tmp_path / "out"
        assert import_cli(source, vocab_file, out, *flags) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (message, err)
        assert not out.exists(), message
    with pytest.raises(ImportModelError, match="reset_after=False"):
        old_gru = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(31, 8),
                                    keras.layers.GRU(16, return_sequences=True, reset_after=False),
                                    keras.layers.Dense(31)])
        old_gru.save_weights(tmp_path / "old.weights.h5")
        import_char_model(tmp_path / "old.weights.h5", vocab, tmp_path / "out", cell="gru", units=16, embedding_dim=8)


def test_weights_defaults_vocab_beside_and_out_without_suffix(tutorial, tmp_path):
    root, models = tutorial
    mine = tmp_path / "notebook"
    mine.mkdir()
    shutil.copy(models["gru"][1]["save_weights"], mine / "shakespeare.weights.h5")
    shutil.copy(root / "vocab.json", mine / "vocab.json")
    assert cli.main(["import", str(mine / "shakespeare.weights.h5"), "--cell", "gru", "--units", "16",
                     "--embedding-dim", "8"]) == 0
    assert load_model_dir(mine / "shakespeare").metadata["imported_format"] == "Keras 3 weights (.weights.h5)"
    # A folder (a checkpoint's or a SavedModel's): vocab.json beside it, output FOLDER-textgen beside it.
    shutil.copytree(models["gru"][1]["one_step"], mine / "one_step")
    assert cli.main(["import", str(mine / "one_step"), "--cell", "gru", "--units", "16", "--embedding-dim", "8"]) == 0
    assert load_model_dir(mine / "one_step-textgen").metadata["imported_format"] == "SavedModel variables"
