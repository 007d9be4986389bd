"""Generation speed: the tutorial's one-`tf.function`-call-per-character loop vs our compiled loop.

One run builds the tutorial-size model (Embedding 256 -> GRU 1024 -> Dense over the 65
Shakespeare characters + [UNK]; random weights: speed does not depend on training) and measures
characters per second for
  (a) the tutorial's way: a Python loop calling `OneStep.generate_one_step` (a `tf.function` that
      takes and returns strings and carries the state), batch 1, copied from the TensorFlow
      "Text generation with an RNN" tutorial;
  (b) ours (`textgen.sampling.Sampler`, default jit_compile="auto") at batch 1 and batch 64,
      float32 and bfloat16 weights, and int8 weights (the loop converted to TFLite, `textgen.lite`);
each the best of two timed runs after a warm-up;
and, at batch 1 and the large batch, float32 and int8, every character model under saved_models/,
with what int8 costs: nats/char of float32 and int8 weights on real text (--quality-text).

Usage: python -m bench.generation --json   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# The 65 characters of tiny_shakespeare (sorted), as the tutorial's `vocab = sorted(set(text))`.
SHAKESPEARE_VOCAB = sorted(set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))


DEFAULT_QUALITY_TEXT = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "tiny_shakespeare" / "input.txt")


class TutorialModel(keras.Model):
    """The tutorial's `MyModel`, in Keras 3 spelling (get_initial_state takes the batch size)."""

    def __init__(self, vocab_size, embedding_dim, rnn_units):
        super().__init__()
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru = keras.layers.GRU(rnn_units, return_sequences=True, return_state=True)
        self.dense = keras.layers.Dense(vocab_size)

    def call(self, inputs, states=None, return_state=False, training=False):
        x = self.embedding(inputs, training=training)
        if states is None:
            states = self.gru.get_initial_state(tf.shape(x)[0])
        x, states = self.gru(x, initial_state=states, training=training)
        x = self.dense(x, training=training)
        return (x, states) if return_state else x


class OneStep(keras.Model):
    """The tutorial's `OneStep`, unchanged in logic: strings in, strings out, one char per call."""

    def __init__(self, model, chars_from_ids, ids_from_chars, temperature=1.0):
        super().__init__()
        self.temperature = temperature
        self.model = model
        self.chars_from_ids = chars_from_ids
        self.ids_from_chars = ids_from_chars
        # Create a mask to prevent "[UNK]" from being generated.
        skip_ids = self.ids_from_chars(["[UNK]"])[:, None]
        sparse_mask = tf.SparseTensor(
            values=[-float("inf")] * len(skip_ids), indices=skip_ids,
            dense_shape=[len(ids_from_chars.get_vocabulary())],
        )
        self.prediction_mask = tf.sparse.to_dense(sparse_mask)

    @tf.function
    def generate_one_step(self, inputs, states=None):
        input_chars = tf.strings.unicode_split(inputs, "UTF-8")
        input_ids = self.ids_from_chars(input_chars).to_tensor()
        predicted_logits, states = self.model(inputs=input_ids, states=states, return_state=True)
        predicted_logits = predicted_logits[:, -1, :]
        predicted_logits = predicted_logits / self.temperature
        predicted_logits = predicted_logits + self.prediction_mask
        predicted_ids = tf.random.categorical(predicted_logits, num_samples=1)
        predicted_ids = tf.squeeze(predicted_ids, axis=-1)
        predicted_chars = self.chars_from_ids(predicted_ids)
        return predicted_chars, states


def tutorial_chars_per_s(one_step: OneStep, prompt: str, length: int, repeats: int = 2) -> float:
    """The tutorial's generation loop at batch 1 (after one warm-up call per trace); best of `repeats`."""
    states = None
    next_char = tf.constant([prompt])
    for _ in range(2):  # traces with states=None and with a state tensor
        next_char, states = one_step.generate_one_step(next_char, states=states)
    best = 0.0
    for _ in range(repeats):
        states = None
        next_char = tf.constant([prompt])
        result = [next_char]
        start = time.perf_counter()
        for _ in range(length):
            next_char, states = one_step.generate_one_step(next_char, states=states)
            result.append(next_char)
        tf.strings.join(result)[0].numpy()
        best = max(best, length / (time.perf_counter() - start))
    return best


def ours_chars_per_s(sampler, prompt: str, length: int, batch: int, repeats: int = 1) -> float:
    """Our compiled sampler: `batch` samples of `length` characters each (after a warm-up)."""
    from textgen.sampling import SamplingParams

    params = SamplingParams(length=length, temperature=1.0, num_samples=batch, seed=1)
    sampler.generate(prompt, params)  # compiles the shapes used below
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        sampler.generate(prompt, params)
        best = max(best, batch * length / (time.perf_counter() - start))
    return best


def tutorial_size_models(vocab_size: int, embedding_dim: int = 256, units: int = 1024):
    """The tutorial model and our char LM of the same size, with the same random weights."""
    from textgen.config import CharLMConfig, RNNConfig
    from textgen.models import build_char_lm

    keras.utils.set_random_seed(0)
    ours = build_char_lm(CharLMConfig(rnn=RNNConfig(cell="gru", units=units), embedding_dim=embedding_dim),
                         SHAKESPEARE_VOCAB)
    tutorial = TutorialModel(vocab_size, embedding_dim, units)
    tutorial(tf.zeros((1, 1), tf.int64))
    for name, layer in (("embedding", tutorial.embedding), ("rnn_0", tutorial.gru), ("logits", tutorial.dense)):
        layer.set_weights(ours.get_layer(name).get_weights())
    return tutorial, ours


def saved_model_dirs(root: Path) -> list[Path]:
    """Character model directories under `root` (sentiment models are not generators)."""
    if not root.is_dir():
        return []
    found = []
    for p in sorted(root.iterdir()):
        try:
            kind = json.loads((p / "config.json").read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if kind == "CharLMConfig" and (p / "model.keras").is_file():
            found.append(p)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.generation", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
    parser.add_argument("--length", type=int, default=1000, help="characters generated per sample (default 1000)")
    parser.add_argument("--batch", type=int, default=64, help="batch of the large-batch measurement (default 64)")
    parser.add_argument("--units", type=int, default=1024,
                        help="GRU units of the built model (default 1024, the tutorial's)")
    parser.add_argument("--embedding-dim", type=int, default=256,
                        help="embedding size of the built model (default 256, the tutorial's)")
    parser.add_argument("--saved-models", default=str(Path(__file__).resolve().parents[1] / "saved_models"),
                        help="folder of model directories to measure too (default: the repo's saved_models/)")
    parser.add_argument("--quality-text", default=DEFAULT_QUALITY_TEXT,
                        help="text whose last --quality-chars characters score each saved model with float32 and "
                             "int8 weights (default: the tiny_shakespeare file in ../shared/data when present; "
                             "its last characters are in the TFDS test split); '' = skip")
    parser.add_argument("--quality-chars", type=int, default=5000, help="characters scored (default 5000)")
    args = parser.parse_args(argv)

    from textgen.artifacts import load_model_dir
    from textgen.lite import convert_step, nats_per_char
    from textgen.sampling import CharLMCore, Sampler

    quality_text = None
    if args.quality_text and Path(args.quality_text).is_file():
        quality_text = Path(args.quality_text).read_text(encoding="utf-8")[-args.quality_chars:]
    elif args.quality_text != DEFAULT_QUALITY_TEXT:
        parser.error(f"--quality-text {args.quality_text}: no such file")

    prompt = "ROMEO:"
    ids_from_chars = keras.layers.StringLookup(vocabulary=SHAKESPEARE_VOCAB, mask_token=None)
    chars_from_ids = keras.layers.StringLookup(vocabulary=ids_from_chars.get_vocabulary(), invert=True,
                                               mask_token=None)
    tutorial, ours = tutorial_size_models(len(ids_from_chars.get_vocabulary()), args.embedding_dim, args.units)
    tut = tutorial_chars_per_s(OneStep(tutorial, chars_from_ids, ids_from_chars), prompt, args.length)

    results = {"benchmark": "generation",
               "model": f"Embedding {args.embedding_dim} -> GRU {args.units} -> Dense 66 (random weights)",
               "length": args.length, "cpu_count": os.cpu_count(),
               "devices": [d.device_type for d in tf.config.list_physical_devices()],
               "tutorial_b1_chars_per_s": round(tut, 1)}
    for precision in ("float32", "bfloat16", "int8"):
        sampler = Sampler(ours, precision=precision)
        suffix = {"float32": "", "bfloat16": "_bf16", "int8": "_int8"}[precision]
        b1 = ours_chars_per_s(sampler, prompt, args.length, 1, repeats=2)
        bn = ours_chars_per_s(sampler, prompt, args.length, args.batch, repeats=2)
        results[f"ours{suffix}_b1_chars_per_s"] = round(b1, 1)
        results[f"ours{suffix}_b{args.batch}_chars_per_s"] = round(bn, 1)
        results[f"ours{suffix}_b1_over_tutorial_b1"] = round(b1 / tut, 2)
        results[f"ours{suffix}_b{args.batch}_over_tutorial_b1"] = round(bn / tut, 2)
    saved = {}
    for path in saved_model_dirs(Path(args.saved_models)):
        try:
            model = load_model_dir(path).model
            sampler, int8 = Sampler(model), Sampler(model, precision="int8")
        except Exception as err:  # a broken directory: report, go on
            saved[path.name] = {"skipped": str(err).splitlines()[0]}
            continue
        entry = {}
        for prefix, s in (("", sampler), ("int8_", int8)):
            entry[f"{prefix}b1_chars_per_s"] = round(ours_chars_per_s(s, "\n", args.length, 1), 1)
            entry[f"{prefix}b{args.batch}_chars_per_s"] = round(ours_chars_per_s(s, "\n", args.length, args.batch), 1)
        if quality_text:
            # What int8 weights cost: teacher-forced nats/char of the same step, float32 vs int8.
            ids = sampler.codec.encode(quality_text)
            core = CharLMCore(model, fuse_embedding=False)
            for name, int8_weights in (("float32", False), ("int8", True)):
                flat = convert_step(core, 1, int8=int8_weights)
                entry[f"{name}_nats_per_char"] = round(nats_per_char(flat, ids, core.state_sizes), 4)
            entry["quality_chars"] = len(quality_text)
        saved[path.name] = entry
    results["saved_models"] = saved
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
