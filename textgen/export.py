"""Export a model directory for programs that do not have textgen: SavedModel or TFLite.

Character model, SavedModel (`tf.saved_model.load(path)`; only TensorFlow needed):
    generate(prompt: string (batch,), num_chars: int32 (), temperature: float32 (), seed: int32 ())
        -> string (batch,) the continuations (prompt excluded); temperature <= 0 = greedy;
        any batch size (unlike the tutorial's reloaded OneStep, tensorflow#56121).
    step(ids: int32 (batch, time), states: tuple of float32 (batch, units)) -> (logits (batch, time,
        vocab), states); zero_states(batch: int32 ()) -> states; vocabulary() -> string (vocab,)
        where id i is vocabulary()[i] and id 0 is "[UNK]".
    The same `generate` is also the signature "serving_default".
Character model, TFLite (`model.tflite`, builtins only, fixed batch): one step,
    inputs ids int32 (batch,) and the states; outputs logits (batch, vocab) and the new states;
    `signature.json` names them; the sampling loop stays in the caller's Python.
Sentiment model, SavedModel: serving_default(text: string (batch,)) -> {"p_positive": (batch,),
    "valence": (batch,)} (valence only when the model has that head).

Custom cells are traced into plain TF ops (the step is `CharLMCore.step`), so loading never needs
the Python classes. Every export is built in a hidden folder beside `--out` and swapped into place
(`textgen.folders`): a killed export leaves the old export or the new one, and never a user's folder
is replaced.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from textgen import folders
from textgen.errors import TextgenError
from textgen.lite import LiteError, convert_step
from textgen.sampling import CharLMCore, seed_words
from textgen.vocab import UNK

TFLITE_FILE = "model.tflite"
SIGNATURE_FILE = "signature.json"
FORMATS = ("savedmodel", "tflite")
MAX_TFLITE_BATCH = 65536  # a fixed TFLite batch beyond this is no real request (states alone: GBs)
# What an export folder holds (SavedModel, TFLite): a marked folder with only these may be replaced.
EXPORT_ENTRIES = ("saved_model.pb", "variables", "assets", "fingerprint.pb", TFLITE_FILE, SIGNATURE_FILE)


class ExportError(TextgenError, ValueError):
    """The export cannot be made (bad format, output folder in the way, unsupported model)."""


class CharLMExport(tf.Module):
    """The SavedModel object of a character model: generate / step / zero_states / vocabulary."""

    def __init__(self, model: keras.Model):
        super().__init__(name="textgen_char_lm")
        # fuse_embedding=False keeps step() the layers' own computation order (closest to Keras).
        self.core = CharLMCore(model, precision="float32", fuse_embedding=False)
        vocab = [UNK] + list(self.core.vocabulary)
        self._vocab = tf.constant(vocab, tf.string)  # id -> character
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(vocab[1:]), tf.range(1, len(vocab), dtype=tf.int32)),
            default_value=0,  # unknown characters read as [UNK]
        )
        start = vocab.index("\n") if "\n" in vocab else 0
        self._start_id = tf.constant(start, tf.int32)  # empty prompts are primed with "\n" when known
        sizes = self.core.state_sizes
        state_specs = tuple(tf.TensorSpec((None, n), tf.float32) for n in sizes)
        self.generate = tf.function(self._generate, input_signature=[
            tf.TensorSpec((None,), tf.string, name="prompt"), tf.TensorSpec((), tf.int32, name="num_chars"),
            tf.TensorSpec((), tf.float32, name="temperature"), tf.TensorSpec((), tf.int32, name="seed"),
        ])
        self.step = tf.function(self._step, input_signature=[tf.TensorSpec((None, None), tf.int32, name="ids"),
                                                               state_specs])
        self.zero_states = tf.function(lambda batch: self.core.zero_states(batch),
                                       input_signature=[tf.TensorSpec((), tf.int32, name="batch")])
        self.vocabulary = tf.function(lambda: self._vocab, input_signature=[])

    def _step(self, ids, states):
        """ids (batch, time) -> logits (batch, time, vocab), states after the last character."""
        steps = tf.shape(ids)[1]
        out = tf.TensorArray(tf.float32, size=steps)

        def body(t, out, states):
            logits, states = self.core.step(ids[:, t], states)
            return t + 1, out.write(t, logits), states

        _, out, states = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), out, states))
        logits = tf.transpose(out.stack(), [1, 0, 2])  # (time, batch, vocab) -> (batch, time, vocab)
        return tf.reshape(logits, tf.stack([tf.shape(ids)[0], steps, self.core.vocab_size])), states

    def _generate(self, prompt, num_chars, temperature, seed):
        chars = tf.strings.unicode_split(prompt, "UTF-8", errors="replace")  # ragged (batch, None)
        ids = tf.ragged.map_flat_values(self.table.lookup, chars)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = ids.to_tensor(default_value=0)  # (batch, longest) right-padded
        empty = lengths == 0
        if_empty = tf.cast(empty, tf.int32) * tf.cast(self._start_id > 0, tf.int32)
        dense = tf.concat([dense, tf.zeros_like(lengths)[:, None]], axis=1)  # room for the start symbol
        first = tf.where(empty, self._start_id, dense[:, 0])
        dense = tf.concat([first[:, None], dense[:, 1:]], axis=1)
        lengths = lengths + if_empty
        batch = tf.shape(prompt)[0]
        vocab = self.core.vocab_size
        shape = tf.stack([batch, vocab])
        states, logits, seen = self.core.prime(dense, lengths, self.core.zero_states(batch), tf.zeros(shape),
                                               tf.zeros(shape, tf.bool))
        out, _, _, _ = self.core.sample(
            tf.maximum(num_chars, 0), logits, states, seen, tf.maximum(temperature, 0.0), tf.constant(0),
            tf.constant(1.0), tf.constant(1.0), seed_words(seed), tf.constant(0),
        )
        return tf.strings.reduce_join(tf.gather(self._vocab, out), axis=1)  # (batch,)


def export_char_savedmodel(model: keras.Model, path: str | os.PathLike) -> None:
    """Writes the character model's SavedModel to `path` (a new folder)."""
    module = CharLMExport(model)
    tf.saved_model.save(module, os.fspath(path), signatures={"serving_default": module.generate})


def export_char_tflite(model: keras.Model, path: str | os.PathLike, batch_size: int = 1) -> None:
    """Writes `model.tflite` (one step, builtins only) and `signature.json` into folder `path`."""
    core = CharLMCore(model, precision="float32", fuse_embedding=False)
    sizes = core.state_sizes
    try:
        flat = convert_step(core, batch_size)
    except LiteError as err:
        raise ExportError(str(err)) from err
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / TFLITE_FILE).write_bytes(flat)
    signature = {"batch_size": batch_size, "inputs": ["ids"] + [f"state_{i}" for i in range(len(sizes))],
                 "outputs": ["logits"] + [f"new_state_{i}" for i in range(len(sizes))], "state_sizes": sizes,
                 "vocabulary": [UNK] + list(core.vocabulary), "note": "id 0 is [UNK]: mask it before sampling"}
    (path / SIGNATURE_FILE).write_text(json.dumps(signature, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_sentiment_savedmodel(model: keras.Model, path: str | os.PathLike) -> None:
    """Writes the sentiment model's SavedModel: serving_default(text) -> {p_positive, valence?}."""
    has_valence = isinstance(model.output, dict) and "valence" in model.output

    def serve(text):
        out = model(text, training=False)  # traced into plain TF ops (custom cells included)
        result = {"p_positive": out["polarity"][:, 0]}
        if has_valence:
            result["valence"] = out["valence"][:, 0]
        return result

    archive = keras.export.ExportArchive()
    archive.track(model)  # tracks the TextVectorization lookup table too
    archive.add_endpoint("serving_default", serve, input_signature=[tf.TensorSpec((None,), tf.string, name="text")])
    archive.write_out(os.fspath(path), verbose=False)


def export_model_dir(model_dir, out, fmt: str = "savedmodel", batch_size: int = 1, overwrite: bool = False) -> Path:
    """Exports the model directory `model_dir` to folder `out` in format `fmt`; returns `out`.

    Args:
        model_dir: a textgen model directory.
        out: output folder; must be absent or empty unless `overwrite`, and must not overlap `model_dir`.
        fmt: "savedmodel" | "tflite" (character models only).
        batch_size: fixed batch of the TFLite step, 1..MAX_TFLITE_BATCH.
        overwrite: replace a non-empty `out` that a previous export wrote (never a folder of the
            user's); the old export stays at `out` until the new one is complete (textgen.folders).
    """
    from textgen.artifacts import check_model_dir_arg, load_model_dir

    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_TFLITE_BATCH:
        raise ExportError(f"batch size must be an integer in [1, {MAX_TFLITE_BATCH}]; got {batch_size!r}")
    check_model_dir_arg(model_dir)
    out = folders.check_out(out, [model_dir], overwrite=overwrite, known=EXPORT_ENTRIES, error=ExportError)
    loaded = load_model_dir(model_dir)
    if loaded.task == "sentiment" and fmt == "tflite":
        raise ExportError("--format tflite exports a character model's step; export sentiment models as savedmodel")
    staged = folders.staging_folder(out)
    try:
        if loaded.task == "sentiment":
            export_sentiment_savedmodel(loaded.model, staged)
        elif fmt == "savedmodel":
            export_char_savedmodel(loaded.model, staged)
        else:
            export_char_tflite(loaded.model, staged, batch_size=batch_size)
        folders.write_marker(staged, "export")  # last: a folder with the marker is a complete export
        folders.publish(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return out

