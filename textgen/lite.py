"""The int8 generation engine: the compiled sample loop converted to TFLite with int8 weights.

At batch 1 generation is bound by reading the weights: the tutorial-size GRU-1024 reads a
12.6 MB float32 recurrent kernel per character, which XLA:CPU does at about 4–5k steps/s on this
2-core machine whatever the sampling code around it. TFLite's dynamic-range quantisation stores
the matmul weights as int8 (per output channel, a quarter of the bytes) and quantises the
activations on the fly per row; its int8 kernels (ruy / XNNPACK) then run the same loop about 3×
faster (see docs/performance.md). The loop converted is `CharLMCore.sample` itself — penalty,
[UNK] mask, temperature, top-k/top-p and the counter-based Gumbel noise — as one TFLite WHILE, so
the only Python per chunk is one interpreter call.

What changes: logits are those of int8 weights (the float32 model's text is not reproduced
exactly; the same seed still gives the same text). Priming stays float32 (`Sampler.start`).
One TFLite model is converted per (batch, steps) shape, about 2–5 s each on first use.
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import tensorflow as tf

from textgen.errors import TextgenError

THREADED_FROM_BATCH = 16  # measured: batch 1 ran 3× faster on 1 thread than 2; batch 64 2× faster on 2


class LiteError(TextgenError, RuntimeError):
    """The int8 loop could not be converted or run."""


def _interpreter(flat: bytes, threads: int):
    """An interpreter for the flatbuffer `flat`: LiteRT's (`ai-edge-litert`, in requirements.txt)
    when it is installed, else TensorFlow's `tf.lite.Interpreter`, which runs the same builtins."""
    try:  # imported here: a process that never runs a TFLite file never loads LiteRT
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = None
    if Interpreter is not None:
        return Interpreter(model_content=flat, num_threads=threads)
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT is its successor; it works in TF 2.21
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_content=flat, num_threads=threads)


def _to_tflite(function, core, int8: bool) -> bytes:
    """A traced `function` (with an input signature) over `core`'s variables -> a builtins-only
    TFLite flatbuffer; int8=True: dynamic-range quantisation (int8 weights, float activations)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], core)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        return converter.convert()
    except Exception as err:  # noqa: BLE001 - the converter raises several unrelated types
        raise LiteError(f"TFLite conversion failed: {str(err).splitlines()[0]}") from err


class _LiteLoop:
    """A loop of `core` converted to TFLite (int8 weights), one flatbuffer per (batch, steps).

    Thread-safe: each converted model has its own interpreter and lock (an interpreter runs one
    call at a time). Subclasses say which loop (`_inputs`, `_loop`).
    """

    def __init__(self, core):
        if core.precision != "float32":
            raise LiteError("the int8 engine quantises a float32 core")
        self.core = core
        self._runners: dict[tuple[int, int], tuple] = {}
        self._lock = threading.Lock()

    def _specs(self, batch: int) -> list:
        vocab = self.core.vocab_size
        specs = [tf.TensorSpec((batch, vocab), tf.float32, name="logits")]
        specs += [tf.TensorSpec((batch, n), tf.float32, name=f"state_{i}") for i, n in enumerate(self.core.state_sizes)]
        return specs + [tf.TensorSpec((batch, vocab), tf.bool, name="seen")]

    def convert(self, batch: int, steps: int) -> bytes:
        """The TFLite flatbuffer of the loop for (batch, steps): builtins only, int8 weights."""
        n_states = len(self.core.state_sizes)
        loop = self._loop

        @tf.function(input_signature=self._specs(batch) + self._inputs(batch, steps))
        def run(logits, *rest):
            states, seen, extra = rest[:n_states], rest[n_states], rest[n_states + 1 :]
            ids, logits, states, seen, more = loop(steps, logits, tuple(states), seen, *extra)
            return {"ids": ids, "logits_out": logits, "seen_out": seen, **more,
                    **{f"state_out_{i}": s for i, s in enumerate(states)}}

        return _to_tflite(run, self.core, int8=True)

    def _runner(self, batch: int, steps: int):
        with self._lock:
            if (batch, steps) not in self._runners:
                threads = 1 if batch < THREADED_FROM_BATCH else (os.cpu_count() or 1)
                interpreter = _interpreter(self.convert(batch, steps), threads)
                interpreter.allocate_tensors()
                self._runners[(batch, steps)] = (interpreter.get_signature_runner(), threading.Lock())
            return self._runners[(batch, steps)]

    def _run(self, steps: int, logits, states, seen, feeds: dict) -> dict:
        batch = int(np.shape(logits)[0])
        runner, lock = self._runner(batch, steps)
        feeds = dict(feeds, logits=np.asarray(logits, np.float32), seen=np.asarray(seen, bool))
        feeds.update({f"state_{i}": np.asarray(s, np.float32) for i, s in enumerate(states)})
        with lock:
            return runner(**feeds)

    def _states(self, out: dict, n: int) -> tuple:
        return tuple(out[f"state_out_{i}"] for i in range(n))


class LiteSampleLoop(_LiteLoop):
    """`core.sample` (one request per call) for fixed (batch, steps), converted to TFLite.

    Args:
        core: a float32 `textgen.sampling.CharLMCore` (its weights are quantised on conversion).
    """

    def _inputs(self, batch: int, steps: int) -> list:
        return [tf.TensorSpec((), tf.float32, name="temperature"), tf.TensorSpec((), tf.int32, name="top_k"),
                tf.TensorSpec((), tf.float32, name="top_p"), tf.TensorSpec((), tf.float32, name="penalty"),
                tf.TensorSpec((2,), tf.uint32, name="seed"), tf.TensorSpec((), tf.int32, name="position")]

    def _loop(self, steps, logits, states, seen, *params):
        return (*self.core.sample(steps, logits, states, seen, *params), {})

    def __call__(self, steps: int, logits, states, seen, temperature, top_k, top_p, penalty, seed, position):
        """Same arguments and results as `CharLMCore.sample` (numpy arrays out)."""
        out = self._run(steps, logits, states, seen, {
            "temperature": np.asarray(temperature, np.float32), "top_k": np.asarray(top_k, np.int32),
            "top_p": np.asarray(top_p, np.float32), "penalty": np.asarray(penalty, np.float32),
            "seed": np.asarray(seed, np.uint32), "position": np.asarray(position, np.int32)})
        return out["ids"], out["logits_out"], self._states(out, len(states)), out["seen_out"]


class LiteRowsLoop(_LiteLoop):
    """`core.sample_rows` (a request per row: continuous batching, `textgen.serving`) for fixed
    (batch, steps), converted to TFLite with int8 weights."""

    def _inputs(self, batch: int, steps: int) -> list:
        return [tf.TensorSpec((batch, steps), tf.int32, name="forced"),
                tf.TensorSpec((batch,), tf.float32, name="temperature"), tf.TensorSpec((batch,), tf.int32, name="top_k"),
                tf.TensorSpec((batch,), tf.float32, name="top_p"), tf.TensorSpec((batch,), tf.float32, name="penalty"),
                tf.TensorSpec((batch, 2), tf.uint32, name="seed"), tf.TensorSpec((batch,), tf.int32, name="lanes"),
                tf.TensorSpec((batch,), tf.int32, name="position")]

    def _loop(self, steps, logits, states, seen, *params):
        ids, logits, states, seen, position = self.core.sample_rows(steps, logits, states, seen, *params)
        return ids, logits, states, seen, {"position_out": position}

    def __call__(self, steps: int, logits, states, seen, forced, temperature, top_k, top_p, penalty, seed, lanes,
                 position):
        """Same arguments and results as `CharLMCore.sample_rows` (numpy arrays out)."""
        names = ("forced", "temperature", "top_k", "top_p", "penalty", "seed", "lanes", "position")
        types = (np.int32, np.float32, np.int32, np.float32, np.float32, np.uint32, np.int32, np.int32)
        values = (forced, temperature, top_k, top_p, penalty, seed, lanes, position)
        out = self._run(steps, logits, states, seen, {n: np.asarray(v, t) for n, v, t in zip(names, values, types)})
        return out["ids"], out["logits_out"], self._states(out, len(states)), out["seen_out"], out["position_out"]


def convert_step(core, batch_size: int = 1, int8: bool = False) -> bytes:
    """`core.step` for a fixed batch as a builtins-only TFLite flatbuffer.

    Inputs `ids` int32 (batch,) and `state_i` float32 (batch, n); outputs `logits` (batch, vocab)
    and `new_state_i`. int8=True quantises the weights exactly as the int8 sample loop does, so
    teacher-forced scores of the two flatbuffers (`nats_per_char`) show what int8 costs.
    """
    specs = [tf.TensorSpec((batch_size,), tf.int32, name="ids")] + [
        tf.TensorSpec((batch_size, n), tf.float32, name=f"state_{i}") for i, n in enumerate(core.state_sizes)
    ]

    @tf.function(input_signature=specs)
    def step(ids, *states):
        logits, new = core.step(ids, states)  # plain matmuls: converts to TFLite builtins
        return {"logits": logits, **{f"new_state_{i}": s for i, s in enumerate(new)}}

    return _to_tflite(step, core, int8=int8)


def nats_per_char(flat: bytes, ids, state_sizes) -> float:
    """Mean next-character cross-entropy (nats) of a batch-1 step flatbuffer over `ids` (teacher
    forced from zero states: ids[t] predicts ids[t+1]); the [UNK] logit is excluded as in sampling,
    [UNK] targets are not scored."""
    interpreter = _interpreter(flat, 1)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    states = {f"state_{i}": np.zeros((1, n), np.float32) for i, n in enumerate(state_sizes)}
    total, count = 0.0, 0
    for t in range(len(ids) - 1):
        out = runner(ids=np.array([ids[t]], np.int32), **states)
        states = {f"state_{i}": out[f"new_state_{i}"] for i in range(len(state_sizes))}
        if ids[t + 1] == 0:  # an [UNK] target cannot be predicted: not scored
            continue
        logits = out["logits"][0, 1:].astype(np.float64)  # without [UNK] (id 0)
        m = logits.max()
        total += m + np.log(np.exp(logits - m).sum()) - logits[ids[t + 1] - 1]
        count += 1
    if count == 0:
        raise LiteError("no character of the text is in the model's vocabulary")
    return total / count
