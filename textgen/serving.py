"""Many users at once: one batched sampler (and one batched predictor) behind every session.

Run one request at a time per user and concurrent users throttle each other: each request is its
own compiled call at batch 1, and eight of them fight for the CPU. Here every request joins one
running batch instead (continuous batching):

    submit(prompt, params) -> a request of `num_samples` rows, queued
    batcher thread, per chunk of `chunk_size` steps:
        waiting requests join (while rows are free, first come first served)
        one compiled call `CharLMCore.sample_rows` over all rows (batch bucketed to a power of two):
            rows still reading their prompt are fed it, the others sample with their own
            temperature / top-k / top-p / penalty / seed / position
        each request receives its rows' new characters; finished and abandoned rows leave

A row's noise is keyed by its request's seed, its own position and its index within its request,
never by where it sits in the batch, so a request's text is the text `Sampler` gives for the same
prompt and parameters (float32; tests/test_serving.py checks it), however many others share the batch.

Sentiment requests are batched the same way by `BatchedPredictor` (texts waiting when a call ends
go together into the next one).

Example:
    >>> batcher = BatchedSampler(load_sampler("saved_models/shakespeare_char"))
    >>> for pieces in batcher.stream("ROMEO:", SamplingParams(length=300, seed=1)):  # from any thread
    ...     print(pieces[0], end="")
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Iterator, Sequence

import numpy as np
import tensorflow as tf

from textgen.sampling import (
    MAX_TOP_K, Sampler, SamplingError, SamplingParams, _bucket, _check_int, _check_params, _check_prompt, seed_words,
)

DEFAULT_MAX_BATCH = 64  # rows per compiled call (the shipped LSTM-512: ~17k chars/s at 64 vs ~2.4k at 1)
DEFAULT_CHUNK = 32  # steps per compiled call: a new request waits at most this many steps to join
_DONE = object()  # end-of-request marker in a request's queue
_log = logging.getLogger("textgen.serving")


class _Request:
    """One caller's request: `rows` samples of the same prompt, answered chunk by chunk."""

    def __init__(self, prompt_ids: list[int], params: SamplingParams):
        self.prompt_ids = prompt_ids
        self.params = params
        self.rows = params.num_samples
        self.produced = 0  # characters each row has delivered
        self.out: queue.Queue = queue.Queue()  # (rows, n) int32 arrays, then _DONE or an exception
        self.cancelled = threading.Event()


class BatchedSampler:
    """Continuous batching over one `Sampler`'s model; thread-safe.

    Args:
        sampler: a `textgen.sampling.Sampler` (its weights, precision and vocabulary; int8 runs
            `sample_rows` converted to TFLite, `textgen.lite.LiteRowsLoop`).
        max_batch: most rows in one compiled call; a request with more samples is refused.
        chunk_size: steps per compiled call; smaller joins sooner and streams more smoothly,
            larger spends less time between calls.
        workers: batches run side by side, each by its own thread (a request goes to the one with
            the fewest rows). On CPU one XLA call of a small batch keeps about one core busy, so
            two workers on two cores serve twice the rows at the same latency (docs/performance.md).
    """

    def __init__(self, sampler: Sampler, max_batch: int = DEFAULT_MAX_BATCH, chunk_size: int = DEFAULT_CHUNK,
                 workers: int = 1):
        if not isinstance(sampler, Sampler):
            raise SamplingError(f"sampler must be a textgen.sampling.Sampler; got {type(sampler).__name__}")
        _check_int("max_batch", max_batch, 1, 4096)
        _check_int("chunk_size", chunk_size, 1, 4096)
        _check_int("workers", workers, 1, 64)
        self.sampler = sampler
        self.core = sampler.core
        self.max_batch = max_batch
        self.chunk_size = chunk_size
        self._functions = {jit: tf.function(self.core.sample_rows, jit_compile=jit) for jit in (True, False)}
        self._lite = None
        if sampler.precision == "int8":
            from textgen.lite import LiteRowsLoop

            self._lite = LiteRowsLoop(self.core)
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [_Worker(self, i) for i in range(workers)]

    @property
    def calls(self) -> int:
        """Compiled calls made so far (all workers)."""
        return sum(w.calls for w in self._workers)

    # ---- the callers' side ----------------------------------------------------------------

    def submit(self, prompt: str, params: SamplingParams) -> _Request:
        """Queues a request (the seed is fixed now if it was None) and returns it at once."""
        _check_prompt(prompt)
        _check_params(params)
        if params.num_samples > self.max_batch:
            raise SamplingError(f"num_samples must be at most {self.max_batch} here (the batch size); "
                                f"got {params.num_samples}")
        request = _Request(self.sampler._encode_prompts([prompt])[0], params.with_seed())
        if params.length == 0:
            request.out.put(_DONE)
            return request
        with self._lock:
            if self._closed:
                raise SamplingError("the batched sampler is closed")
            min(self._workers, key=lambda w: w.load).add(request)
        return request

    def stream(self, prompt: str, params: SamplingParams) -> Iterator[list[str]]:
        """Yields, per chunk, the `num_samples` new text pieces. Closing the generator (or a
        session going away) frees the request's rows at the next chunk."""
        request = self.submit(prompt, params)
        codec = self.sampler.codec
        try:
            while True:
                item = request.out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield [codec.decode(row) for row in item]
        finally:
            request.cancelled.set()

    def generate(self, prompt: str, params: SamplingParams) -> list[str]:
        """`num_samples` continuations of `prompt`, as `Sampler.generate` gives them."""
        pieces = [[] for _ in range(params.num_samples if isinstance(params, SamplingParams) else 1)]
        for chunk in self.stream(prompt, params):
            for acc, piece in zip(pieces, chunk):
                acc.append(piece)
        return ["".join(p) for p in pieces]

    def warm_up(self, up_to: int | None = None) -> None:
        """Compiles the call for every batch bucket up to `up_to` rows (default max_batch), so no
        user waits for XLA (about 0.5-1 s a shape for the shipped LSTM-512 on 2 CPU cores)."""
        up_to = self.max_batch if up_to is None else min(up_to, self.max_batch)
        batch = 1
        while True:
            batch = _bucket(batch, self.max_batch)
            self._call(_empty(self.core, batch), np.full((batch, self.chunk_size), -1, np.int32))
            if batch >= up_to:
                return
            batch *= 2

    def close(self) -> None:
        """Stops the workers; requests still waiting or running receive a SamplingError."""
        with self._lock:
            self._closed = True
        for worker in self._workers:
            worker.close()

    def _call(self, arrays: dict[str, np.ndarray], forced: np.ndarray):
        """One compiled chunk over padded rows -> ids (batch, chunk) and the new carried arrays."""
        n_states = len(self.core.state_sizes)
        states = tuple(arrays[f"state_{i}"] for i in range(n_states))
        params = [arrays[k] for k in ("temperature", "top_k", "top_p", "penalty", "seed", "lanes", "position")]
        if self._lite is not None:
            ids, logits, states, seen, position = self._lite(self.chunk_size, arrays["logits"], states,
                                                             arrays["seen"], forced, *params)
        else:
            # XLA at every batch size: for this loop it measured as fast or faster than TF's graph
            # from batch 1 to 64 (docs/performance.md), unlike the one-request loop.
            jit = True if self.sampler.jit_compile == "auto" else self.sampler.jit_compile
            ids, logits, states, seen, position = self._functions[jit](
                self.chunk_size, tf.constant(arrays["logits"]), tuple(map(tf.constant, states)),
                tf.constant(arrays["seen"]), tf.constant(forced), *map(tf.constant, params))
            ids, logits, seen, position = ids.numpy(), logits.numpy(), seen.numpy(), position.numpy()
            states = [s.numpy() for s in states]
        out = {"logits": np.asarray(logits), "seen": np.asarray(seen), "position": np.asarray(position)}
        out.update({f"state_{i}": np.asarray(s) for i, s in enumerate(states)})
        return np.asarray(ids), out


def _empty(core, n: int) -> dict[str, np.ndarray]:
    """Carried values of `n` fresh rows: zero states, uniform logits, nothing seen."""
    vocab = core.vocab_size
    arrays = {"logits": np.zeros((n, vocab), np.float32), "seen": np.zeros((n, vocab), bool),
              "temperature": np.zeros((n,), np.float32), "top_k": np.zeros((n,), np.int32),
              "top_p": np.ones((n,), np.float32), "penalty": np.ones((n,), np.float32),
              "seed": np.zeros((n, 2), np.uint32), "lanes": np.zeros((n,), np.int32),
              "position": np.zeros((n,), np.int32)}
    for i, size in enumerate(core.state_sizes):
        arrays[f"state_{i}"] = np.zeros((n, size), np.float32)
    return arrays


class _Worker:
    """One running batch and the thread that advances it a chunk at a time."""

    def __init__(self, owner: BatchedSampler, index: int):
        self.owner = owner
        self.core = owner.core
        self.max_batch = owner.max_batch
        self.chunk_size = owner.chunk_size
        self._pending: list[_Request] = []
        self._rows: list[tuple[_Request, int]] = []  # (request, lane) per batch row, in batch order
        self._cursor: list[int] = []  # per row: prompt characters fed so far
        self._arrays: dict[str, np.ndarray] = {}  # per-row carried values, rows in batch order
        self._cond = threading.Condition()
        self._closed = False
        self.calls = 0
        self._thread = threading.Thread(target=self._loop, name=f"textgen-batched-sampler-{index}", daemon=True)
        self._thread.start()

    @property
    def load(self) -> int:
        """Rows running or waiting here."""
        with self._cond:
            return len(self._rows) + sum(r.rows for r in self._pending)

    def add(self, request: _Request) -> None:
        with self._cond:
            self._pending.append(request)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=30)

    def _admit(self, requests: list[_Request]) -> None:
        """Appends the rows of newly admitted requests to the batch."""
        fresh = _empty(self.core, sum(r.rows for r in requests))
        row = 0
        for request in requests:
            p = request.params
            seed = seed_words(p.seed).numpy()
            for lane in range(request.rows):
                fresh["temperature"][row] = p.temperature
                fresh["top_k"][row] = min(p.top_k, MAX_TOP_K)
                fresh["top_p"][row] = p.top_p
                fresh["penalty"][row] = p.repetition_penalty
                fresh["seed"][row] = seed
                fresh["lanes"][row] = lane
                self._rows.append((request, lane))
                self._cursor.append(0)
                row += 1
        self._arrays = fresh if not self._arrays else {k: np.concatenate([v, fresh[k]]) for k, v in self._arrays.items()}

    def _keep(self, keep: list[int]) -> None:
        self._rows = [self._rows[i] for i in keep]
        self._cursor = [self._cursor[i] for i in keep]
        self._arrays = {k: v[keep] for k, v in self._arrays.items()} if keep else {}

    def _step(self) -> None:
        """One compiled call over every row; delivers each request's new characters."""
        n = len(self._rows)
        batch = _bucket(n, self.max_batch)
        forced = np.full((batch, self.chunk_size), -1, np.int32)  # (batch, chunk): prompt ids to feed
        for i, (request, _) in enumerate(self._rows):
            piece = request.prompt_ids[self._cursor[i] : self._cursor[i] + self.chunk_size]
            forced[i, : len(piece)] = piece
            self._cursor[i] += len(piece)
        arrays = self._arrays
        if batch > n:  # padding rows: fresh, sampling, ignored
            pad = _empty(self.core, batch - n)
            arrays = {k: np.concatenate([v, pad[k]]) for k, v in arrays.items()}
        ids, out = self.owner._call(arrays, forced)
        self.calls += 1
        for key, value in out.items():
            self._arrays[key] = value[:n]
        keep, by_request = [], {}
        for i, (request, _) in enumerate(self._rows):
            by_request.setdefault(id(request), (request, []))[1].append(i)
        for request, rows in by_request.values():
            if request.cancelled.is_set():
                continue
            # Every row of a request shares its prompt, so all of them sampled the same count.
            got = ids[rows]
            new = got[got >= 0].reshape(len(rows), -1)[:, : request.params.length - request.produced]
            if new.shape[1]:
                request.produced += new.shape[1]
                request.out.put(new)
            if request.produced >= request.params.length:
                request.out.put(_DONE)
            else:
                keep += rows
        self._keep(sorted(keep))

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._pending and not self._rows:
                    self._cond.wait()
                if self._closed:
                    _fail(self._pending + [r for r, _ in self._rows], SamplingError("the batched sampler is closed"))
                    return
                # First come, first served: the head of the line waits for room rather than being overtaken.
                admitted, free = [], self.max_batch - len(self._rows)
                while self._pending and self._pending[0].rows <= free:
                    request = self._pending.pop(0)
                    if not request.cancelled.is_set():
                        admitted.append(request)
                        free -= request.rows
                try:
                    if admitted:
                        self._admit(admitted)
                    self._keep([i for i, (r, _) in enumerate(self._rows) if not r.cancelled.is_set()])
                except Exception as err:  # noqa: BLE001
                    _fail(admitted, SamplingError(f"generation failed: {err}"))
                    continue
            if not self._rows:
                continue
            try:
                self._step()
            except Exception as err:  # noqa: BLE001  (a failed call must answer every waiting caller)
                _log.exception("batched sampling failed")
                with self._cond:
                    _fail([r for r, _ in self._rows], SamplingError(f"generation failed: {err}"))
                    self._keep([])


def _fail(requests: Sequence[_Request], error: Exception) -> None:
    for request in {id(r): r for r in requests}.values():
        request.out.put(error)


class BatchedPredictor:
    """Sentiment predictions of concurrent callers in one compiled call; thread-safe.

    Texts that arrive while a call runs wait and go together into the next one (up to
    `max_texts`), through `SentimentPredictor.predict`, whose per-text results do not depend on
    the other texts in the call.
    """

    def __init__(self, predictor, max_texts: int = 256):
        from textgen.inference import SentimentPredictor

        if not isinstance(predictor, SentimentPredictor):
            raise SamplingError(f"predictor must be a textgen.inference.SentimentPredictor; got {type(predictor).__name__}")
        self.predictor = predictor
        self.max_texts = max_texts
        self.has_valence = predictor.has_valence
        self._pending: list[tuple[list[str], queue.Queue]] = []
        self._cond = threading.Condition()
        self.calls = 0
        threading.Thread(target=self._loop, name="textgen-batched-predictor", daemon=True).start()

    def predict(self, texts: Sequence[str] | str) -> list[dict]:
        """As `SentimentPredictor.predict` (same checks and rows), batched with other callers."""
        from textgen.inference import _as_texts, PredictError

        texts = _as_texts(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise PredictError(f"text {i} must be a string; got {type(text).__name__}")
        if not texts:
            return []
        answer: queue.Queue = queue.Queue(maxsize=1)
        with self._cond:
            self._pending.append((texts, answer))
            self._cond.notify()
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch, count = [], 0
                # Always at least one caller; then whole callers while they fit.
                while self._pending and (not batch or count + len(self._pending[0][0]) <= self.max_texts):
                    texts, answer = self._pending.pop(0)
                    batch.append((texts, answer))
                    count += len(texts)
            try:
                rows = self.predictor.predict([t for texts, _ in batch for t in texts])
                self.calls += 1
                start = 0
                for texts, answer in batch:
                    answer.put(rows[start : start + len(texts)])
                    start += len(texts)
            except Exception as err:  # noqa: BLE001  (every waiting caller gets the error)
                for _, answer in batch:
                    answer.put(err)
