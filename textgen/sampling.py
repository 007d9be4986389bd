"""Character generation: temperature / top-k / top-p / repetition penalty in one compiled loop.

The tutorial calls a `tf.function` once per character from Python. Here the whole loop is one
`tf.while_loop` inside one compiled `tf.function` (XLA for small batches, see `Sampler`), and each
step is the cell's equations written as plain TF ops on the layers' own weights (no Keras layer
call per step):

    ids (batch,) -> table[ids] (the embedding already multiplied by the first kernel, + bias)
    -> cell equations per layer (batch, units) -> logits = h @ W + b (batch, vocab)
    -> penalty, [UNK] mask, temperature, top-k, top-p -> Gumbel-max sample (batch,)

Randomness is stateless: the noise of position `t` is a hash of (seed, t) (`textgen.noise`), so
the same seed gives the same text whether it is produced in one call, streamed in chunks, or by
the exported SavedModel. What a request may ask, and its checks, is `textgen.sampling_params`.

Empty prompt: the model is primed with "\\n" when "\\n" is in its vocabulary (a text's natural
start); otherwise it starts from zero states with a uniform first character (greedy: the first
vocabulary character).

Example:
    >>> sampler = load_sampler("saved_models/shakespeare")
    >>> sampler.generate("ROMEO:", SamplingParams(length=100, temperature=0.8, seed=1))
    ['\nI will not ...']    # one continuation of 100 characters (the prompt is not repeated)
"""

from __future__ import annotations

from typing import Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from textgen import cell_kinds
from textgen.models.char_lm_core import PRECISIONS, CharLMStep
from textgen.noise import _fmix32, _per_row, counter_uniform, seed_words  # noqa: F401  (re-exported)
from textgen.sampling_params import (  # noqa: F401  (re-exported: callers build requests from textgen.sampling)
    MAX_LENGTH, MAX_PROMPT_CHARS, MAX_SAMPLES, MAX_SEED, SamplingError, SamplingParams, _check_float, _check_int,
    _check_params, _check_prompt,
)
from textgen.vocab import CharCodec, vocabulary_of  # noqa: F401

MAX_TOP_K = 2**31 - 1  # int32 (what the loop takes); a larger top_k is clipped to it: both keep every character
PRIME_WINDOW = 256  # prompts are primed in windows of at most this many characters
DEFAULT_CHUNK = 256  # characters per compiled call when generating or streaming
XLA_MAX_BATCH = 16  # jit_compile="auto": XLA below this batch, TF's oneDNN graph from it on
SAMPLER_PRECISIONS = PRECISIONS + ("int8",)  # int8: the sample loop runs in TFLite (textgen.lite)
_TINY_TEMPERATURE = 1e-30  # divides (logits - max) safely: no 0/0 even for temperature -> 0+


# --------------------------------------------------------------------------------------------
# The step in plain TF ops (also traced into the exported SavedModel / TFLite model).


def cell_kind(layer: keras.layers.Layer) -> str:
    """`textgen.cell_kinds.equation_kind` with its error as a `SamplingError`."""
    try:
        return cell_kinds.equation_kind(layer)
    except ValueError as err:
        raise SamplingError(str(err).replace("is not a textgen recurrent layer", "is not a supported recurrent layer")) from err


def cell_equations(kind, x_proj, states, recurrent, matmul, rec_bias=None, peephole=None) -> list:
    """One step of a cell kind in plain TF ops; returns the new states ([h] or [h, c]).

    The equations are the kind's `textgen.cell_kinds.CellKind.step` (which also gives the gates).
    Shapes work with any leading dimensions, e.g. (batch, ·) or (directions, batch, ·) with
    batched weights (directions, ·, ·).

    Args:
        kind: one of `textgen.config.CELL_KINDS`.
        x_proj: (..., gates·units) input projection `x @ kernel + input bias`.
        states: [h] or [h, c], each (..., units).
        recurrent: recurrent kernel (units, gates·units) (or batched).
        matmul: `matmul(a, w)` (lets the caller use bfloat16 weights).
        rec_bias: GRU only: the recurrent bias (gates·units,) of `reset_after=True`.
        peephole: peephole_lstm only: the peephole kernel (units, 3·units).
    """
    return cell_kinds.REGISTRY[kind].step(x_proj, states, recurrent, matmul, rec_bias, peephole).states


# --------------------------------------------------------------------------------------------
# The loop over a step callable (keras-hub's samplers take a `next` function the same way):
# `step(ids (batch,), states) -> logits (batch, vocab), states` is the model's (CharLMStep.step).


def _vocab(logits) -> int:
    return logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]


def select(logits, seen, temperature, top_k, top_p, penalty, seed, position, lanes=None):
    """Picks one id per row from logits (batch, vocab) -> (batch,) int32; never [UNK] (id 0).

    The parameters are scalars (one request) or per-row vectors (temperature, top_k, top_p,
    penalty, position (batch,), seed (batch, 2), lanes (batch,): `counter_uniform`)."""
    t_col, penalty = _per_row(temperature), _per_row(penalty)
    # Repetition penalty (CTRL rule) on characters already in the prompt or the output.
    penalized = tf.where(logits > 0, logits / penalty, logits * penalty)
    unk = tf.range(_vocab(logits)) == 0  # (vocab,): [UNK] is never picked
    logits = tf.where(unk[None, :], tf.constant(-np.inf, tf.float32), tf.where(seen, penalized, logits))
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    # Subtracting the max first keeps every value <= 0, so tiny temperatures give -inf, never NaN.
    scaled = (logits - tf.reduce_max(logits, axis=-1, keepdims=True)) / tf.maximum(t_col, _TINY_TEMPERATURE)
    # The sort behind top-k / top-p runs only when one of them is on (tf.cond: one branch runs).
    filtering = (top_k > 0) | (top_p < 1.0)
    if filtering.shape.rank:
        filtering = tf.reduce_any(filtering)
    scaled = tf.cond(filtering, lambda: top_k_top_p(scaled, top_k, top_p), lambda: scaled)
    # Gumbel-max: argmax(logits + Gumbel noise) ~ softmax(logits); stateless, keyed by position.
    uniform = counter_uniform(seed, position, tf.shape(scaled), lanes)
    sampled = tf.argmax(scaled - tf.math.log(-tf.math.log(uniform)), axis=-1, output_type=tf.int32)
    return tf.where(temperature > 0, sampled, greedy)


def top_k_top_p(scaled, top_k, top_p):
    """Sets logits outside the top-k and the top-p nucleus to -inf; (batch, vocab) -> same.

    top_k, top_p: scalars or per-row (batch,) vectors."""
    vocab = _vocab(scaled)
    neg_inf = tf.constant(-np.inf, tf.float32)
    ordered = tf.sort(scaled, axis=-1, direction="DESCENDING")  # (batch, vocab)
    k = tf.clip_by_value(top_k, 1, vocab)
    if k.shape.rank:
        kth = tf.gather(ordered, (k - 1)[:, None], axis=1, batch_dims=1)  # (batch, 1) each row's k-th largest
    else:
        kth = tf.gather(ordered, k - 1, axis=1)[:, None]  # (batch, 1) the k-th largest
    top_k, top_p = _per_row(top_k), _per_row(top_p)
    scaled = tf.where((top_k > 0) & (scaled < kth), neg_inf, scaled)
    ordered = tf.where((top_k > 0) & (ordered < kth), neg_inf, ordered)
    # top-p: keep sorted entries whose probability mass *before* them is below p.
    before = tf.math.cumsum(tf.nn.softmax(ordered, axis=-1), axis=-1, exclusive=True)
    # The first entry is always kept: a top_p that rounds to 0 in float32 must still leave one.
    keep = (before < top_p) | (tf.range(vocab) == 0)[None, :]
    cutoff = tf.reduce_min(tf.where(keep, ordered, np.inf), axis=-1, keepdims=True)
    return tf.where((top_p < 1.0) & (scaled < cutoff), neg_inf, scaled)


def sample_loop(step, steps, logits, states, seen, temperature, top_k, top_p, penalty, seed, position):
    """Samples `steps` characters in one while loop over `step`.

    Args:
        step: the model's `step(ids, states) -> (logits, states)`.
        steps: number of characters (a Python int under XLA, else a scalar tensor).
        logits, states, seen: carried from `prime` or the previous chunk.
        temperature, top_p, penalty: float32 scalars; top_k int32; seed (2,) uint32 words
            (`seed_words`); position int32 (absolute index of the first character, which keys
            the random noise).
    Returns:
        ids (batch, steps) int32, logits, states, seen.
    """
    out = tf.TensorArray(tf.int32, size=steps)
    vocab = _vocab(logits)

    def body(t, out, logits, states, seen):
        ids = select(logits, seen, temperature, top_k, top_p, penalty, seed, position + t)
        seen = seen | tf.one_hot(ids, vocab, on_value=True, off_value=False)
        logits, states = step(ids, states)
        return t + 1, out.write(t, ids), logits, states, seen

    _, out, logits, states, seen = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), out, logits, states, seen)
    )
    ids = tf.transpose(out.stack())  # (steps, batch) -> (batch, steps)
    return tf.reshape(ids, tf.stack([tf.shape(logits)[0], steps])), logits, states, seen


def sample_rows_loop(step, steps, logits, states, seen, forced, temperature, top_k, top_p, penalty, seed, lanes,
                     position):
    """One chunk of continuous batching over `step`: every row is its own request, and a row still
    reading its prompt is fed the prompt instead of sampling (so priming and sampling share one
    loop and one compiled shape per batch size).

    At step t, row r feeds `forced[r, t]` when it is >= 0 (a prompt character: states, logits
    and the penalty's `seen` advance exactly as in `prime`), else samples with its own
    parameters at its own `position` (as `sample_loop` does for that request alone).

    Args:
        step: the model's `step(ids, states) -> (logits, states)`.
        steps: characters per call (a Python int under XLA).
        logits (batch, vocab), states, seen (batch, vocab): carried per row.
        forced: (batch, steps) int32 prompt ids, -1 = sample.
        temperature, top_p, penalty: (batch,) float32; top_k (batch,) int32; seed (batch, 2)
            uint32; lanes (batch,) int32 (row index within its request); position (batch,)
            int32 (characters the row has sampled so far).
    Returns:
        ids (batch, steps) int32 (-1 where a prompt character was fed), logits, states, seen,
        position.
    """
    out = tf.TensorArray(tf.int32, size=steps)
    vocab = _vocab(logits)

    def body(t, out, logits, states, seen, position):
        feed = forced[:, t]  # (batch,)
        feeding = feed >= 0
        sampled = select(logits, seen, temperature, top_k, top_p, penalty, seed, position, lanes)
        ids = tf.where(feeding, feed, sampled)
        seen = seen | tf.one_hot(ids, vocab, on_value=True, off_value=False)
        logits, states = step(ids, states)
        position = position + tf.cast(tf.logical_not(feeding), tf.int32)
        return t + 1, out.write(t, tf.where(feeding, -1, ids)), logits, states, seen, position

    _, out, logits, states, seen, position = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), out, logits, states, seen, position)
    )
    ids = tf.transpose(out.stack())  # (steps, batch) -> (batch, steps)
    return tf.reshape(ids, tf.stack([tf.shape(logits)[0], steps])), logits, states, seen, position


class CharLMCore(CharLMStep):
    """A character model's step (`textgen.models.char_lm_core.CharLMStep`: weights, `step`,
    `prime`, `zero_states`) with the sampling loops above bound to it: what the `Sampler`, the
    exports and the batched sampler compile (one tf.Module, so its variables trace with it).

    Raises:
        SamplingError: not a textgen character model, an unsupported layer, or a bad precision.
    """

    def __init__(self, model: keras.Model, precision: str = "float32", fuse_embedding: bool = True, name=None):
        try:
            super().__init__(model, precision=precision, fuse_embedding=fuse_embedding, name=name)
        except ValueError as err:
            raise SamplingError(str(err)) from err

    def select(self, logits, seen, temperature, top_k, top_p, penalty, seed, position, lanes=None):
        return select(logits, seen, temperature, top_k, top_p, penalty, seed, position, lanes)

    def sample(self, steps, logits, states, seen, temperature, top_k, top_p, penalty, seed, position):
        """`sample_loop` over this model's step."""
        return sample_loop(self.step, steps, logits, states, seen, temperature, top_k, top_p, penalty, seed, position)

    def sample_rows(self, steps, logits, states, seen, forced, temperature, top_k, top_p, penalty, seed, lanes,
                    position):
        """`sample_rows_loop` over this model's step."""
        return sample_rows_loop(self.step, steps, logits, states, seen, forced, temperature, top_k, top_p, penalty,
                                seed, lanes, position)


# --------------------------------------------------------------------------------------------
# The Python-facing sampler: encodes prompts, calls the compiled chunks, decodes.


def _scalars(params: SamplingParams) -> tuple:
    """The sampling parameters as the tensors the compiled sample loop takes (a seed must be set)."""
    return (
        tf.constant(params.temperature, tf.float32),
        tf.constant(min(params.top_k, MAX_TOP_K), tf.int32),  # any k >= the vocabulary means "all"
        tf.constant(params.top_p, tf.float32),
        tf.constant(params.repetition_penalty, tf.float32),
        seed_words(params.seed),
    )


def _bucket(n: int, cap: int) -> int:
    """Smallest power of two >= n, at most `cap`: bounds the number of compiled shapes."""
    return min(cap, 1 << max(0, n - 1).bit_length())


class Sampler:
    """Compiled generation for one character model.

    The weights are copied when the sampler is built: after further training, build a new one or
    call `load_weights`.
    Compiled functions are cached per (batch, chunk) shape; chunk lengths are powers of two.

    Args:
        model: a textgen character model.
        precision: "float32" (default), "bfloat16" weights, or "int8": the sample loop converted to
            TFLite with int8 weights (`textgen.lite`; about 3× faster at batch 1 on CPU, logits
            of int8 weights; priming stays float32).
        jit_compile: True = compile the loops with XLA; False = plain TF graphs; "auto" = XLA for
            batches below `XLA_MAX_BATCH` (on CPU, XLA wins at small batches where per-op overhead
            dominates; larger batches are matmul-bound, where TF's oneDNN kernels, bfloat16
            included, are faster than XLA's).
        chunk_size: characters per compiled call (a power of two is best); streaming yields
            chunks of this size.
    """

    def __init__(self, model: keras.Model, precision: str = "float32", jit_compile: bool | str = "auto",
                 chunk_size: int = DEFAULT_CHUNK):
        _check_int("chunk_size", chunk_size, 1, MAX_LENGTH)
        if precision not in SAMPLER_PRECISIONS:
            raise SamplingError(f"precision must be one of {', '.join(SAMPLER_PRECISIONS)}; got {precision!r}")
        self.precision = precision
        self.core = CharLMCore(model, precision="float32" if precision == "int8" else precision)
        self._lite = None
        if precision == "int8":
            from textgen.lite import LiteSampleLoop

            self._lite = LiteSampleLoop(self.core)
        self.vocabulary = self.core.vocabulary
        self.codec = CharCodec(self.vocabulary)
        self.chunk_size = chunk_size
        self._start_id = self.codec.encode("\n")[0] if "\n" in self.vocabulary else None
        if jit_compile not in (True, False, "auto"):
            raise SamplingError(f"jit_compile must be True, False or 'auto'; got {jit_compile!r}")
        self.jit_compile = jit_compile
        self._compiled = {
            jit: (tf.function(self.core.prime, jit_compile=jit), tf.function(self.core.sample, jit_compile=jit))
            for jit in (True, False)
        }

    def load_weights(self, model: keras.Model) -> None:
        """Copies `model`'s weights (same shapes and vocabulary) into this sampler in place, so the
        compiled loops are reused: a sample after each training epoch then costs no new trace (for
        a 64-unit GRU, 0.04 CPU-s to load against 0.36 CPU-s for a new Sampler's first 200
        characters). float32/bfloat16 only: int8 weights live in a converted TFLite model.
        """
        if self._lite is not None:
            raise SamplingError("an int8 sampler cannot take new weights; build a new Sampler")
        fresh = CharLMCore(model, precision=self.core.precision, fuse_embedding=self.core.fuse_embedding)
        if fresh.vocabulary != self.core.vocabulary or fresh.kinds != self.core.kinds or fresh.units != self.core.units:
            raise SamplingError("load_weights needs a model of the same kinds, sizes and vocabulary")
        for mine, theirs in zip(self.core.variables, fresh.variables, strict=True):
            mine.assign(theirs)

    def _functions(self, batch: int):
        """(prime, sample) tf.functions for a batch size."""
        jit = batch < XLA_MAX_BATCH if self.jit_compile == "auto" else self.jit_compile
        return self._compiled[jit]

    def _encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        encoded = []
        for text in prompts:
            if not isinstance(text, str):
                raise SamplingError(f"a prompt must be a string; got {type(text).__name__}")
            if len(text) > MAX_PROMPT_CHARS:
                raise SamplingError(f"a prompt may have at most {MAX_PROMPT_CHARS} characters; got {len(text)}")
            ids = self.codec.encode(text)  # unknown characters -> 0 ([UNK]); never fails
            if not ids and self._start_id is not None:
                ids = [self._start_id]
            encoded.append(ids)
        return encoded

    def start(self, prompts: Sequence[str]):
        """Primes the model with `prompts` -> (logits, states, seen) for the first character."""
        encoded = self._encode_prompts(prompts)
        batch = len(encoded)
        states = self.core.zero_states(batch)
        logits = tf.zeros((batch, self.core.vocab_size), tf.float32)  # uniform if nothing is primed
        seen = tf.zeros((batch, self.core.vocab_size), tf.bool)
        longest = max((len(e) for e in encoded), default=0)
        for begin in range(0, longest, PRIME_WINDOW):
            window = [e[begin : begin + PRIME_WINDOW] for e in encoded]
            width = _bucket(max(len(w) for w in window), PRIME_WINDOW)
            ids = np.zeros((batch, width), dtype="int32")
            for row, w in enumerate(window):
                ids[row, : len(w)] = w
            lengths = tf.constant([len(w) for w in window], tf.int32)
            states, logits, seen = self._functions(batch)[0](tf.constant(ids), lengths, states, logits, seen)
        return logits, states, seen

    def stream_ids(self, prompts: Sequence[str], params: SamplingParams, chunk_size: int | None = None
                   ) -> Iterator[np.ndarray]:
        """Yields (batch, chunk) int32 id arrays; states are carried between chunks."""
        chunk = self.chunk_size if chunk_size is None else chunk_size
        _check_int("chunk_size", chunk, 1, MAX_LENGTH)
        _check_params(params)
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise SamplingError(f"prompts must be a list of strings; got {type(prompts).__name__}")
        params = params.with_seed()
        logits, states, seen = self.start(prompts)
        scalars = _scalars(params)
        done = 0
        while done < params.length:
            want = min(chunk, params.length - done)
            if self._lite is not None:
                # One converted TFLite model per (batch, chunk): a short last chunk runs the full
                # chunk and is cut (it is the last, so the states past it are never used).
                ids, logits, states, seen = self._lite(chunk, logits, states, seen, *scalars, done)
                yield ids[:, :want]
            else:
                steps = _bucket(want, chunk) if want < chunk else chunk
                sample = self._functions(int(logits.shape[0]))[1]
                ids, logits, states, seen = sample(steps, logits, states, seen, *scalars, tf.constant(done, tf.int32))
                yield ids.numpy()[:, :want]
            done += want

    def stream(self, prompt: str, params: SamplingParams, chunk_size: int | None = None) -> Iterator[list[str]]:
        """Yields, per chunk, a list of `num_samples` text pieces (the prompt is not repeated).

        Example:
            >>> for pieces in sampler.stream("ROMEO:", SamplingParams(length=500, seed=3), 64):
            ...     print(pieces[0], end="", flush=True)
        """
        _check_prompt(prompt)
        _check_params(params)
        for ids in self.stream_ids([prompt] * params.num_samples, params, chunk_size):
            yield [self.codec.decode(row) for row in ids]

    def warm_up(self, prompt: str = "\n", length: int | None = None, chunk_size: int | None = None,
                num_samples: int = 1) -> None:
        """Runs one throwaway request (greedy, output discarded) so that the shapes it uses are
        compiled before a user waits: priming for the prompt's length bucket, and the chunk
        lengths that `length` splits into. Same-shaped requests afterwards compile nothing.

        Each new shape is compiled on first use (XLA: about 0.5 s each for the shipped LSTM-512
        on 2 CPU cores); without a warm-up the first request's speed mostly measures compilation.
        """
        chunk = self.chunk_size if chunk_size is None else chunk_size
        params = SamplingParams(length=chunk if length is None else length, temperature=0.0,
                                num_samples=num_samples, seed=0)
        for _ in self.stream(prompt, params, chunk):
            pass

    def generate(self, prompt: str, params: SamplingParams) -> list[str]:
        """`num_samples` continuations of `prompt` (each `length` characters, prompt excluded)."""
        _check_prompt(prompt)
        _check_params(params)
        pieces = [[] for _ in range(params.num_samples)]
        for chunk in self.stream(prompt, params):
            for acc, piece in zip(pieces, chunk):
                acc.append(piece)
        return ["".join(p) for p in pieces]


def load_sampler(model_dir, **kwargs) -> Sampler:
    """A `Sampler` for a character model directory (a sentiment directory is refused)."""
    from textgen import tasks
    from textgen.artifacts import load_model_dir

    loaded = load_model_dir(model_dir)
    if not tasks.for_config(loaded.config).generates:
        raise SamplingError(f"{model_dir} holds a {loaded.task} model; generate needs a character model (charlm)")
    return Sampler(loaded.model, **kwargs)
