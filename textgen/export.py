"""Export a model directory for programs that do not have textgen: SavedModel or TFLite.

Character model, SavedModel (only TensorFlow needed). Its signatures, the serving contract
(`saved_model_cli show --all --dir PATH` lists them; TF Serving serves them; in Python
`tf.saved_model.load(path).signatures[NAME](**inputs)` returns a dict of the named outputs):
    generate (also "serving_default"): one request per row.
        inputs  prompt string (batch,); num_chars int32 () characters per row, 0..100000;
                temperature float32 (batch,) finite >= 0, 0 = greedy;
                seed int64 (batch,) 0..2**63-1 (the Sampler's whole seed range)
        outputs text string (batch,) the continuations (prompt excluded)
    generate_full: generate's inputs plus top_k int32 (batch,) >= 0 (0 = off), top_p float32
        (batch,) in (0, 1] (1 = off) and repetition_penalty float32 (batch,) > 0 (1 = off);
        outputs text. (Serving tools require every input of a signature, hence two signatures.)
    step: inputs ids int32 (batch, time), state_0..state_{n-1} float32 (batch, units_i);
        outputs logits float32 (batch, time, vocab) and state_0..state_{n-1} after the last id
        (the same names as the inputs: feed them back for the next call).
    zero_states: input batch int32 (); outputs state_0..state_{n-1} of zeros.
    vocabulary: no inputs; output vocabulary string (vocab,): id i is vocabulary[i], id 0 "[UNK]".
    Row r of `generate` is what `textgen.sampling.Sampler.generate(prompt_r, SamplingParams(
    length=num_chars, temperature=temperature_r, seed=seed_r))[0]` gives, whatever the other rows
    hold (`CharLMCore.sample_rows`: lane 0 and positions from 0 for every row). A value out of
    range fails the call with InvalidArgumentError naming the input; any batch size works (unlike
    the tutorial's reloaded OneStep, tensorflow#56121).
    Python attributes (`tf.saved_model.load(path).generate(...)`): `generate(prompt, num_chars,
    temperature, seed)` -> string (batch,), temperature and seed either per row (as the
    signature) or both scalars (seed int64 or int32), which make the batch one request (row r =
    sample r of `SamplingParams(num_samples=batch)`); `step(ids, states_tuple)` -> (logits,
    states_tuple); `zero_states(batch)` -> states_tuple; `vocabulary()` -> string (vocab,).
Character model, TFLite (`model.tflite`, builtins only, fixed batch): one step,
    inputs ids int32 (batch,) and the states; outputs logits (batch, vocab) and the new states;
    `signature.json` names them; the sampling loop stays in the caller's Python.
Sentiment model, SavedModel: signatures "classify" and "serving_default" (the same function):
    input text string (batch,); outputs p_positive float32 (batch,), label string (batch,)
    "positive" where p_positive >= `textgen.inference.THRESHOLD` else "negative", and valence
    float32 (batch,) only when the model has a valence head (no NaN placeholder: a client sees in
    the signature whether the model rates valence).

Custom cells are traced into plain TF ops (the step is `CharLMCore.step`), so loading never needs
the Python classes. Every export is built in a hidden folder beside `--out` and swapped into place
(`textgen.folders`): a killed export leaves the old export or the new one, and never a user's folder
is replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import tensorflow as tf

from textgen import folders
from textgen.errors import TextgenError
from textgen.inference import THRESHOLD
from textgen.lite import LiteError, convert_step
from textgen.sampling import MAX_LENGTH, CharLMCore, seed_words
from textgen.vocab import UNK

TFLITE_FILE = "model.tflite"
SIGNATURE_FILE = "signature.json"
FORMATS = ("savedmodel", "tflite")
MAX_TFLITE_BATCH = 65536  # a fixed TFLite batch beyond this is no real request (states alone: GBs)
# What an export folder holds (SavedModel, TFLite): a marked folder with only these may be replaced.
EXPORT_ENTRIES = ("saved_model.pb", "variables", "assets", "fingerprint.pb", TFLITE_FILE, SIGNATURE_FILE)
CHAR_SIGNATURES = ("serving_default", "generate", "generate_full", "step", "zero_states", "vocabulary")
SENTIMENT_SIGNATURES = ("serving_default", "classify")


class ExportError(TextgenError, ValueError):
    """The export cannot be made (bad format, output folder in the way, unsupported model)."""


def _require(condition, message: str):
    """An assert op: the call fails with InvalidArgumentError "... message" unless all of `condition`."""
    return tf.debugging.Assert(tf.reduce_all(condition), [message])


class CharLMExport(tf.Module):
    """The SavedModel object of a character model: the attributes generate / step / zero_states /
    vocabulary, and `signatures()` for `tf.saved_model.save` (named inputs and outputs).

    Every generate variant calls one traced function, `_sample_text`, so the graph holds the
    sampling loop once."""

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
        self._state_names = [f"state_{i}" for i in range(len(self.core.state_sizes))]
        self._state_specs = [tf.TensorSpec((None, n), tf.float32, name=name)
                             for name, n in zip(self._state_names, self.core.state_sizes)]
        rows = lambda dtype, name: tf.TensorSpec((None,), dtype, name=name)  # noqa: E731 - (batch,)
        self._generate_specs = [rows(tf.string, "prompt"), tf.TensorSpec((), tf.int32, name="num_chars"),
                                rows(tf.float32, "temperature"), rows(tf.int64, "seed")]
        self._filter_specs = [rows(tf.int32, "top_k"), rows(tf.float32, "top_p"),
                              rows(tf.float32, "repetition_penalty")]
        self._sample_text = tf.function(self._sample, input_signature=self._generate_specs + self._filter_specs
                                        + [rows(tf.int32, "lanes")])
        # The Python attributes. `generate` is traced for per-row temperature and seed, and for one
        # scalar temperature and seed (int64 or int32) for every row; a loaded object dispatches
        # a call to the trace its arguments fit.
        self.generate = tf.function(self._generate_attribute)
        scalar = tf.TensorSpec((), tf.float32, name="temperature")
        self.generate.get_concrete_function(*self._generate_specs)
        for dtype in (tf.int64, tf.int32):
            self.generate.get_concrete_function(*self._generate_specs[:2], scalar, tf.TensorSpec((), dtype, name="seed"))
        self.step = tf.function(self._step, input_signature=[tf.TensorSpec((None, None), tf.int32, name="ids"),
                                                               tuple(self._state_specs)])
        self.zero_states = tf.function(lambda batch: self.core.zero_states(batch),
                                       input_signature=[tf.TensorSpec((), tf.int32, name="batch")])
        self.vocabulary = tf.function(lambda: self._vocab, input_signature=[])

    def signatures(self) -> dict:
        """Signature name -> concrete function with named inputs and a dict of named outputs."""
        names = self._state_names

        def generate(prompt, num_chars, temperature, seed):
            return generate_full(prompt, num_chars, temperature, seed, *self._off(prompt))

        def generate_full(prompt, num_chars, temperature, seed, top_k, top_p, repetition_penalty):
            lanes = tf.zeros_like(top_k)  # every row a request of its own
            return {"text": self._sample_text(prompt, num_chars, temperature, seed, top_k, top_p, repetition_penalty,
                                              lanes)}

        def step(ids, *states):
            logits, states = self._step(ids, states)
            return {"logits": logits, **dict(zip(names, states))}

        def zero_states(batch):
            return dict(zip(names, self.core.zero_states(batch)))

        def vocabulary():
            return {"vocabulary": self._vocab}

        out = {
            "generate": tf.function(generate, input_signature=self._generate_specs),
            "generate_full": tf.function(generate_full, input_signature=self._generate_specs + self._filter_specs),
            "step": tf.function(step, input_signature=[tf.TensorSpec((None, None), tf.int32, name="ids"),
                                                       *self._state_specs]),
            "zero_states": tf.function(zero_states, input_signature=[tf.TensorSpec((), tf.int32, name="batch")]),
            "vocabulary": tf.function(vocabulary, input_signature=[]),
        }
        out = {name: fn.get_concrete_function() for name, fn in out.items()}
        return {"serving_default": out["generate"], **out}

    @staticmethod
    def _off(prompt) -> tuple:
        """top_k 0, top_p 1 and repetition penalty 1 for every row: (batch,) each."""
        rows = tf.shape(prompt)[:1]
        return tf.zeros(rows, tf.int32), tf.ones(rows, tf.float32), tf.ones(rows, tf.float32)

    def _generate_attribute(self, prompt, num_chars, temperature, seed):
        """The `generate` attribute: per-row temperature and seed as the signature, or scalars,
        which make the batch one request (row r its lane r, as `Sampler.stream_ids(prompts,
        params)`) -> string (batch,)."""
        rows = tf.shape(prompt)[:1]
        if seed.shape.rank == 0:
            lanes = tf.range(rows[0])
            temperature, seed = tf.broadcast_to(temperature, rows), tf.broadcast_to(tf.cast(seed, tf.int64), rows)
        else:
            lanes = tf.zeros(rows, tf.int32)
        return self._sample_text(prompt, num_chars, temperature, seed, *self._off(prompt), lanes)

    def _step(self, ids, states):
        """ids (batch, time) -> logits (batch, time, vocab), states after the last character."""
        steps = tf.shape(ids)[1]
        out = tf.TensorArray(tf.float32, size=steps)

        def body(t, out, states):
            logits, states = self.core.step(ids[:, t], states)
            return t + 1, out.write(t, logits), states

        _, out, states = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), out, tuple(states)))
        logits = tf.transpose(out.stack(), [1, 0, 2])  # (time, batch, vocab) -> (batch, time, vocab)
        return tf.reshape(logits, tf.stack([tf.shape(ids)[0], steps, self.core.vocab_size])), states

    def _sample(self, prompt, num_chars, temperature, seed, top_k, top_p, penalty, lanes):
        """prompt (batch,) string -> continuations (batch,) string; every other input but
        num_chars is per row (batch,); lanes: each row's index within its request (0 = a request
        of its own; the noise is keyed by it, `counter_uniform`)."""
        batch = tf.shape(prompt)[0]
        checks = [_require(tf.shape(x)[0] == batch, f"{name} must have one value per prompt (shape (batch,))")
                  for name, x in (("temperature", temperature), ("seed", seed), ("top_k", top_k),
                                  ("top_p", top_p), ("repetition_penalty", penalty))]
        checks += [
            _require((num_chars >= 0) & (num_chars <= MAX_LENGTH), f"num_chars must be in [0, {MAX_LENGTH}]"),
            _require(tf.math.is_finite(temperature) & (temperature >= 0),
                     "temperature must be a finite number >= 0 (0 = greedy)"),
            _require(seed >= 0, "seed must be in [0, 2**63-1]"),
            _require(top_k >= 0, "top_k must be >= 0 (0 = off)"),
            _require((top_p > 0) & (top_p <= 1), "top_p must be in (0, 1] (1 = off)"),
            _require(tf.math.is_finite(penalty) & (penalty > 0),
                     "repetition_penalty must be a finite number > 0 (1 = off)"),
        ]
        with tf.control_dependencies(checks):  # every op below reads the inputs after the checks
            prompt, num_chars, temperature, seed, top_k, top_p, penalty, lanes = (
                tf.identity(x) for x in (prompt, num_chars, temperature, seed, top_k, top_p, penalty, lanes))
        batch = tf.shape(prompt)[0]
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
        shape = tf.stack([batch, self.core.vocab_size])
        states, logits, seen = self.core.prime(dense, lengths, self.core.zero_states(batch), tf.zeros(shape),
                                               tf.zeros(shape, tf.bool))
        # As in continuous batching: positions from 0 and each row's lane, so a row's noise (hence
        # its text) is the Sampler's for that prompt and seed, whatever the other rows hold.
        forced = tf.fill(tf.stack([batch, num_chars]), -1)  # (batch, num_chars): no prompt ids to feed
        words = tf.transpose(seed_words(seed))  # (2, batch) -> (batch, 2) uint32 [low, high]
        out, _, _, _, _ = self.core.sample_rows(num_chars, logits, states, seen, forced, temperature, top_k, top_p,
                                                penalty, words, lanes, tf.zeros_like(lanes))
        return tf.strings.reduce_join(tf.gather(self._vocab, out), axis=1)  # (batch,)


def export_char_savedmodel(model: keras.Model, path: str | os.PathLike) -> None:
    """Writes the character model's SavedModel to `path` (a new folder)."""
    module = CharLMExport(model)
    tf.saved_model.save(module, os.fspath(path), signatures=module.signatures())


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
    """Writes the sentiment model's SavedModel: classify = serving_default, text (batch,) ->
    {p_positive, label, valence (with a valence head)} (batch,) each."""
    has_valence = isinstance(model.output, dict) and "valence" in model.output

    def classify(text):
        out = model(text, training=False)  # traced into plain TF ops (custom cells included)
        p_positive = out["polarity"][:, 0]  # (batch,)
        result = {"p_positive": p_positive,
                  "label": tf.where(p_positive >= THRESHOLD, tf.constant("positive"), tf.constant("negative"))}
        if has_valence:
            result["valence"] = out["valence"][:, 0]
        return result

    archive = keras.export.ExportArchive()
    archive.track(model)  # tracks the TextVectorization lookup table too
    # The first endpoint is also written as "serving_default" (the same concrete function).
    archive.add_endpoint("classify", classify, input_signature=[tf.TensorSpec((None,), tf.string, name="text")])
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
    from textgen import tasks
    from textgen.artifacts import check_model_dir_arg, load_model_dir

    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_TFLITE_BATCH:
        raise ExportError(f"batch size must be an integer in [1, {MAX_TFLITE_BATCH}]; got {batch_size!r}")
    check_model_dir_arg(model_dir)
    out = folders.check_out(out, [model_dir], overwrite=overwrite, known=EXPORT_ENTRIES, error=ExportError)
    loaded = load_model_dir(model_dir)
    task = tasks.for_config(loaded.config)
    if fmt not in task.export_formats:
        offered = [t.models for t in map(tasks.get, tasks.names()) if fmt in t.export_formats]
        raise ExportError(f"--format {fmt} exports {' and '.join(offered)}; export {task.models} as "
                          + " or ".join(task.export_formats))
    folders.build_and_publish(out, lambda staged: task.export(loaded.model, staged, fmt, batch_size), "export")
    return out

