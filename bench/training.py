"""Training speed: the tutorial's `model.fit` vs our training path, in characters per second.

One run trains the tutorial-size character model (Embedding 256 -> GRU 1024 -> Dense over the
tiny_shakespeare characters + [UNK], batch 64, sequences of 100) for `--steps` steps after
`--warmup` steps, three ways, each from the same initial seed:
  (a) tutorial: the TensorFlow "Text generation with an RNN" recipe: ids from a StringLookup,
      `tf.data` windows of 101 -> split -> shuffle -> batch, a subclassed-free Embedding/GRU/Dense
      model, Adam, `model.fit`, float32;
  (b) ours_float32: `textgen.train` (string-input model, `textgen.data.char_windows`, Adam with
      clipnorm and the cosine schedule) in float32;
  (c) ours_mixed_bfloat16: the same with `precision="mixed_bfloat16"` (float32 weights,
      bfloat16 matmuls; this CPU has AVX-512 BF16).
Reports chars/s of each, the speed-up of our best setting over the tutorial, and the mean loss of
the last 10 timed steps of (b) and (c) (same data order), so a faster precision that trains worse
shows up. Only the timed steps count: time from the end of the last warm-up step to the end of the
last step, taken by a callback.

Usage: python -m bench.training --json [--steps 30] [--warmup 5] [--text-file F | --data-dir D]
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

SEQ_LEN, BATCH, EMBED, UNITS = 100, 64, 256, 1024
SHARED_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tiny_shakespeare" / "input.txt"


class StepClock(keras.callbacks.Callback):
    """Wall time at the end of every training batch, and its loss."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())
        self.losses.append(float((logs or {}).get("loss", np.nan)))


def _timed(fit, warmup: int, steps: int) -> dict:
    clock = StepClock()
    fit(clock)
    seconds = clock.times[warmup + steps - 1] - clock.times[warmup - 1]
    # Keras reports the running mean of the epoch's loss; undo it to get per-step losses.
    running = np.array(clock.losses[: warmup + steps])
    per_step = running * np.arange(1, len(running) + 1) - np.concatenate([[0.0], running[:-1] * np.arange(1, len(running))])
    return {"chars_per_s": steps * BATCH * SEQ_LEN / seconds, "seconds": seconds,
            "loss_last_10": float(np.mean(per_step[-10:]))}


def tutorial(text: str, vocab: list[str], warmup: int, steps: int, seed: int) -> dict:
    """(a) The tutorial's pipeline and `model.fit`, float32."""
    keras.utils.set_random_seed(seed)
    ids_from_chars = keras.layers.StringLookup(vocabulary=vocab, mask_token=None)
    all_ids = ids_from_chars(tf.strings.unicode_split(text, "UTF-8"))
    ds = tf.data.Dataset.from_tensor_slices(all_ids).batch(SEQ_LEN + 1, drop_remainder=True)
    ds = ds.map(lambda seq: (seq[:-1], seq[1:]))
    ds = ds.shuffle(10000, seed=seed).batch(BATCH, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)
    vocab_size = ids_from_chars.vocabulary_size()
    ids = keras.Input(shape=(None,), dtype="int64")
    x = keras.layers.Embedding(vocab_size, EMBED)(ids)
    x = keras.layers.GRU(UNITS, return_sequences=True)(x)
    model = keras.Model(ids, keras.layers.Dense(vocab_size)(x))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return _timed(lambda cb: model.fit(ds, epochs=1, steps_per_epoch=warmup + steps, callbacks=[cb], verbose=0),
                  warmup, steps)


def ours(text: str, vocab: list[str], warmup: int, steps: int, seed: int, precision: str) -> dict:
    """(b)/(c) Our training path: `textgen.train` model, optimizer, compile and data pipeline."""
    from textgen import data, train
    from textgen.config import CharLMConfig, RNNConfig

    cfg = train.TrainConfig(batch_size=BATCH, seq_len=SEQ_LEN, precision=precision, seed=seed)
    keras.utils.set_random_seed(seed)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = train.build_model("charlm", CharLMConfig(rnn=RNNConfig(cell="gru", units=UNITS), embedding_dim=EMBED),
                                  vocab)
        train.compile_model("charlm", model, cfg, train.make_optimizer(cfg, 10 * (warmup + steps)))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    ds = data.char_windows(text, vocab, SEQ_LEN, BATCH, shuffle=True, seed=seed, repeat=True)
    return _timed(lambda cb: model.fit(ds, epochs=1, steps_per_epoch=warmup + steps, callbacks=[cb], verbose=0,
                                       shuffle=False), warmup, steps)


def _load_text(args) -> str:
    if args.text_file:
        return Path(args.text_file).read_text(encoding="utf-8")
    if args.data_dir:
        from textgen import data

        return data.read_text("tiny_shakespeare", "train", data_dir=args.data_dir)
    if SHARED_TEXT.is_file():
        return SHARED_TEXT.read_text(encoding="utf-8")
    raise SystemExit("bench/training.py: give --text-file or --data-dir (a prepared tiny_shakespeare)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.training", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per variant (default: 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first, incl. tracing (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for every variant (default: 0)")
    parser.add_argument("--text-file", default=None, help="training text (default: tiny_shakespeare)")
    parser.add_argument("--data-dir", default=None, help="TFDS data dir with tiny_shakespeare prepared (default: none)")
    parser.add_argument("--variants", default="tutorial,ours_float32,ours_mixed_bfloat16",
                        help="comma-separated subset of tutorial, ours_float32, ours_mixed_bfloat16 (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON line (the only output format)")
    args = parser.parse_args(argv)
    if args.steps < 10 or args.warmup < 1:
        parser.error("--steps must be >= 10 and --warmup >= 1")
    text = _load_text(args)
    vocab = sorted(set(text))
    results = {}
    for name in args.variants.split(","):
        if name == "tutorial":
            results[name] = tutorial(text, vocab, args.warmup, args.steps, args.seed)
        elif name.startswith("ours_"):
            results[name] = ours(text, vocab, args.warmup, args.steps, args.seed, name[len("ours_"):])
        else:
            parser.error(f"unknown variant {name!r}")
    out = {"bench": "training", "model": f"Embedding {EMBED} -> GRU {UNITS} -> Dense", "batch": BATCH,
           "seq_len": SEQ_LEN, "steps": args.steps, "warmup": args.warmup, "cpu_count": os.cpu_count(),
           "load_avg_1min": os.getloadavg()[0], "tensorflow": tf.__version__,
           "results": {k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}}
    ours_names = [k for k in results if k.startswith("ours_")]
    if "tutorial" in results and ours_names:
        best = max(ours_names, key=lambda k: results[k]["chars_per_s"])
        out["best"] = best
        out["speedup_vs_tutorial"] = round(results[best]["chars_per_s"] / results["tutorial"]["chars_per_s"], 3)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
