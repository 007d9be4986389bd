"""Cell-kind comparison: matched parameter counts, test bits/char and a long-range context probe.

The probe is *context ablation*: the test text is scored once with the recurrent state carried
across the whole text and once per reset interval k with the state reset to zeros every k
characters (a character at offset j of its k-block then sees only j characters of context). The
gain `bpc(reset k) - bpc(carried)` is how many bits per character a cell earns from context
longer than k. Scores also come binned by distance since the last newline (how the loss falls
within a line). Everything runs on the step model (`build_step_model`) with many pieces of the
text side by side in one batch.

Example:
    >>> matched_units("gru", 400_000, vocab_size=66, embedding_dim=32, layers=1)
    324
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from textgen.config import CELL_KINDS, ConfigError
from textgen.errors import TextgenError

RESETS = (5, 20, 100)  # default reset intervals k of the probe, in characters
NEWLINE_BINS = (0, 5, 20, 50)  # lower edges of the distance-since-newline bins (last one open)
MARKDOWN_FILE = "cell_comparison.md"
PLOT_FILE = "cell_comparison.png"
BATCH_ROWS = 4096  # rows of a reset-k batch per step-model call (memory: rows x k x vocab floats)


class CompareError(TextgenError):
    """A comparison cannot run: not a character model, too little text, bad arguments."""


# --------------------------------------------------------------------------------------------
# Parameter counts


def rnn_layer_params(kind: str, input_dim: int, units: int) -> int:
    """Weights of one recurrent layer of `kind` reading `input_dim` features (as Keras builds it).

    gru is Keras's reset_after=True form (two bias vectors per gate); peephole_lstm's peepholes
    are a (units, 3 units) matrix (textgen.cells.PeepholeLSTMCell).
    """
    d, u = input_dim, units
    if kind == "simple_rnn":
        return d * u + u * u + u
    if kind == "gru":
        return 3 * (d * u + u * u) + 6 * u
    if kind == "lstm":
        return 4 * (d * u + u * u + u)
    if kind == "minimal_gru":
        return 2 * (d * u + u * u + u)
    if kind == "peephole_lstm":
        return 4 * (d * u + u * u + u) + 3 * u * u
    raise ConfigError(f"unknown cell kind {kind!r}; choose one of {', '.join(CELL_KINDS)}")


def char_lm_params(kind: str, units: int, vocab_size: int, embedding_dim: int, layers: int) -> int:
    """Trainable weights of `build_char_lm` (embedding + RNN stack + logits).

    Args:
        vocab_size: output classes including `[UNK]` (len(vocabulary) + 1).
    """
    total = vocab_size * embedding_dim  # embedding
    d = embedding_dim
    for _ in range(layers):
        total += rnn_layer_params(kind, d, units)
        d = units
    return total + units * vocab_size + vocab_size  # logits


def matched_units(kind: str, target_params: int, vocab_size: int, embedding_dim: int, layers: int) -> int:
    """The units per layer whose character model has the parameter count closest to `target_params`.

    Parameter counts grow by roughly `dP/du` per unit (a few thousand for hundreds of units), so
    the nearest count is within a fraction of a percent of the target for targets above ~10^5.

    Raises:
        ConfigError: unknown kind, or a target smaller than the model with one unit.
    """
    for name, value in (("target_params", target_params), ("vocab_size", vocab_size),
                        ("embedding_dim", embedding_dim), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer; got {value!r}")
    count = lambda u: char_lm_params(kind, u, vocab_size, embedding_dim, layers)  # noqa: E731
    if count(1) > target_params:
        raise ConfigError(f"target_params {target_params} is below the smallest {kind} model ({count(1)} parameters)")
    lo, hi = 1, 2
    while count(hi) < target_params:  # counts increase with units: double, then bisect
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= target_params else (lo, mid)
    return min((lo, hi), key=lambda u: (abs(count(u) - target_params), u))


# --------------------------------------------------------------------------------------------
# Per-character losses with the step model


class _Scorer:
    """Runs the step model over (rows, time) id blocks and returns per-position losses in nats."""

    def __init__(self, model, chunk: int = 256):
        from textgen.models import build_step_model, initial_states

        self.model, self.chunk = model, chunk
        self.initial_states = initial_states
        step = build_step_model(model)

        @tf.function(reduce_retracing=True)
        def run(x, y, states):
            out = step([x, *states], training=False)
            logp = tf.nn.log_softmax(tf.cast(out[0], tf.float32), axis=-1)  # (rows, time, vocab)
            return -tf.gather(logp, y, batch_dims=2), list(out[1:])  # (rows, time) nats

        self._run = run

    def zeros(self, rows: int) -> list:
        return [tf.constant(s) for s in self.initial_states(self.model, rows)]

    def score(self, x: np.ndarray, y: np.ndarray | None, states: list) -> tuple[np.ndarray, list]:
        """x, y: (rows, time) int32 ids; y None = only advance the states. Returns ((rows, time) nats, states)."""
        pieces = []
        for s in range(0, x.shape[1], self.chunk):
            xs = x[:, s:s + self.chunk]
            ys = y[:, s:s + self.chunk] if y is not None else np.zeros_like(xs)
            nats, states = self._run(tf.constant(xs), tf.constant(ys), states)
            if y is not None:
                pieces.append(nats.numpy().astype(np.float64))
        return (np.concatenate(pieces, axis=1) if pieces else np.zeros((x.shape[0], 0))), states


def encode(model, text: str) -> np.ndarray:
    """The text as (n,) int32 ids of the model's vocabulary (unknown characters -> 0)."""
    from textgen.vocab import CharCodec, vocabulary_of

    return np.asarray(CharCodec(vocabulary_of(model)).encode(text), dtype=np.int32)


def carried_nats(model, ids: np.ndarray, streams: int = 64, burn_in: int = 256, scorer: _Scorer | None = None
                 ) -> np.ndarray:
    """(n-1,) loss of characters 2..n with the state carried across the text.

    The same scheme as `textgen.evaluate.charlm_loss`: B contiguous streams in one batch, each after
    the first primed on the `burn_in` characters before it; the tail continues the last stream.
    `scorer` reuses one compiled step function across calls (None: a new one).
    """
    n = len(ids) - 1
    if n < 1:
        raise CompareError("the text needs at least two characters")
    scorer = scorer or _Scorer(model)
    b = max(1, min(streams, n // 64))
    t = n // b
    states = scorer.zeros(b)
    w = min(burn_in, t)
    if b > 1 and w > 0:  # stream 0 starts cold; streams 1.. are warmed on what precedes them
        primer = np.stack([ids[i * t - w: i * t] for i in range(1, b)])
        _, primed = scorer.score(primer, None, scorer.zeros(b - 1))
        states = [tf.concat([tf.zeros_like(p[:1]), p], axis=0) for p in primed]
    nats, states = scorer.score(ids[: b * t].reshape(b, t), ids[1: b * t + 1].reshape(b, t), states)
    out = [nats.reshape(-1)]
    if n - b * t:
        tail, _ = scorer.score(ids[b * t: n][None, :], ids[b * t + 1: n + 1][None, :], [s[-1:] for s in states])
        out.append(tail.reshape(-1))
    return np.concatenate(out)


def reset_nats(model, ids: np.ndarray, k: int, scorer: _Scorer | None = None) -> np.ndarray:
    """(n-1,) loss of characters 2..n with the state reset to zeros every `k` characters.

    Input position p (predicting p+1) belongs to block p // k and sees positions k*(p//k)..p only.
    Blocks run side by side as rows of one batch; a last partial block is scored on its own.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise CompareError(f"reset interval must be a positive integer; got {k!r}")
    n = len(ids) - 1
    scorer = scorer or _Scorer(model)
    full = n // k
    out = []
    for r in range(0, full, BATCH_ROWS):
        rows = min(BATCH_ROWS, full - r)
        x = ids[r * k: (r + rows) * k].reshape(rows, k)
        y = ids[r * k + 1: (r + rows) * k + 1].reshape(rows, k)
        nats, _ = scorer.score(x, y, scorer.zeros(rows))
        out.append(nats.reshape(-1))
    if n - full * k:
        nats, _ = scorer.score(ids[full * k: n][None, :], ids[full * k + 1: n + 1][None, :], scorer.zeros(1))
        out.append(nats.reshape(-1))
    return np.concatenate(out)


def window_nats(model, ids: np.ndarray, starts: Sequence[int], length: int, burn_in: int = 256) -> np.ndarray:
    """(windows, length) loss of characters starts[i]+1 .. starts[i]+length, each window primed first.

    Every window reads the `burn_in` characters before it (state burn-in, not scored), like the
    streams of `textgen.evaluate.charlm_loss`, so a few spread-out windows estimate the loss of a
    whole split quickly.

    Raises:
        CompareError: a window starts before `burn_in` or ends past the text.
    """
    starts = np.asarray(starts, dtype=np.int64)
    if length < 1 or starts.min() < burn_in or starts.max() + length + 1 > len(ids):
        raise CompareError(f"windows of {length} characters with burn-in {burn_in} do not fit a text of {len(ids)}")
    scorer = _Scorer(model)
    states = scorer.zeros(len(starts))
    if burn_in:
        _, states = scorer.score(np.stack([ids[s - burn_in: s] for s in starts]), None, states)
    nats, _ = scorer.score(np.stack([ids[s: s + length] for s in starts]),
                           np.stack([ids[s + 1: s + length + 1] for s in starts]), states)
    return nats


def newline_distance(text: str) -> np.ndarray:
    """(n-1,) for each predicted character 2..n: characters read since the last newline (0 = right after one)."""
    dist = np.empty(len(text) - 1, dtype=np.int64)
    since = 10**9  # no newline seen yet: "far"
    for i, ch in enumerate(text[:-1]):  # input position i predicts character i+1
        since = 0 if ch == "\n" else since + 1
        dist[i] = since
    return dist


def binned_bpc(nats: np.ndarray, dist: np.ndarray, edges: Sequence[int] = NEWLINE_BINS) -> dict[str, float | None]:
    """Mean bits/char per distance-since-newline bin, e.g. {"0-4": 3.1, "5-19": 2.0, ..., "50+": 1.8}."""
    out = {}
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        sel = (dist >= lo) & (dist < hi) if hi is not None else dist >= lo
        label = f"{lo}-{hi - 1}" if hi is not None else f"{lo}+"
        out[label] = float(nats[sel].mean() / math.log(2)) if sel.any() else None
    return out


def probe(model, text: str, resets: Sequence[int] = RESETS, streams: int = 64) -> dict:
    """Context ablation of one character model on `text`.

    Returns:
        {"characters", "carried_bpc", "reset_bpc": {k: bpc}, "gain_bpc": {k: bpc(reset k) - carried},
         "newline_bpc": {bin: bpc}} over the same predicted characters.
    """
    ids = encode(model, text)
    if len(ids) < 2 * max(resets) + 1:
        raise CompareError(f"the probe text has {len(ids)} characters; give at least {2 * max(resets) + 1}")
    scorer = _Scorer(model)
    carried = carried_nats(model, ids, streams=streams, scorer=scorer)
    bits = 1 / math.log(2)
    reset = {int(k): float(reset_nats(model, ids, int(k), scorer).mean() * bits) for k in resets}
    carried_bpc = float(carried.mean() * bits)
    return {
        "characters": int(len(carried)), "carried_bpc": carried_bpc, "reset_bpc": reset,
        "gain_bpc": {k: v - carried_bpc for k, v in reset.items()},
        "newline_bpc": binned_bpc(carried, newline_distance(text)),
    }


# --------------------------------------------------------------------------------------------
# The comparison of model directories


def _param_count(model) -> int:
    return int(model.count_params())


def compare_dirs(model_dirs: Sequence[str | os.PathLike], *, text: str | None = None, dataset: str | None = None,
                 split: str = "test", limit_chars: int = 20000, resets: Sequence[int] = RESETS, streams: int = 64,
                 data_dir=None, manual_dir=None) -> dict:
    """Loads each character model directory and probes it on the same text.

    Args:
        model_dirs: character model directories (one per cell kind for the zoo).
        text: the probe text; None = `split` of `dataset` (default: the first model's dataset).
        limit_chars: probe only the first N characters of the text (0 = all).
        resets: reset intervals k in characters.
        streams: parallel streams of the carried run.
    Returns:
        {"source", "characters", "resets", "rows": [one dict per model]}.
    """
    from textgen import data
    from textgen.artifacts import load_model_dir

    if not model_dirs:
        raise CompareError("give at least one model directory")
    if limit_chars < 0 or streams < 1 or not resets or any(int(k) < 1 for k in resets):
        raise CompareError("--limit-chars must be >= 0, --streams >= 1 and every reset interval >= 1")
    loaded = []
    for path in model_dirs:
        md = load_model_dir(path)
        if md.task != "charlm":
            raise CompareError(f"{path} is a {md.task} model; the comparison takes character models")
        loaded.append(md)
    if text is None:
        dataset = dataset or (loaded[0].metadata.get("dataset") or {}).get("name")
        if not dataset:
            raise CompareError("give --dataset or --text-file (the first model's metadata names no dataset)")
        text = data.read_text(dataset, split, data_dir=data_dir, manual_dir=manual_dir)
        source = f"{dataset} {split} split"
    else:
        source = "given text"
    if limit_chars:
        text = text[:limit_chars]
    rows = []
    for md in loaded:
        meta = md.metadata
        metrics = meta.get("metrics") or {}
        result = probe(md.model, text, resets, streams)
        rows.append({
            "name": Path(md.path).name, "path": str(md.path), "cell": md.config.rnn.cell,
            "units": md.config.rnn.units, "layers": md.config.rnn.layers, "params": _param_count(md.model),
            # The whole test split as recorded at the end of training (None when not recorded).
            "test_bpc": metrics.get("bits_per_char") if metrics.get("split") == "test" else None,
            "training_time_s": meta.get("training_time_s"), "epochs_run": meta.get("epochs_run"),
            **result,
        })
    return {"source": source, "characters": rows[0]["characters"], "resets": [int(k) for k in resets], "rows": rows}


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _fmt_time(seconds) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def comparison_markdown(result: dict) -> str:
    """The `docs/cell_comparison.md` text for a `compare_dirs` result."""
    rows, resets = result["rows"], result["resets"]
    lines = [
        "# Cell-kind comparison", "",
        "_Generated by `textgen compare` (see docs/models.md); do not edit by hand._", "",
        f"Probe text: the first {result['characters'] + 1:,} characters of the {result['source']}. "
        "`test bpc` is the model's metric recorded in its metadata.json (the whole test split, state carried). "
        "`carried` scores the probe text with the state carried across it; `reset k` resets the state to "
        "zeros every k characters, so a character sees at most k-1 characters of context. "
        "`gain k` = bpc(reset k) - bpc(carried): the bits per character the cell earns from context "
        "longer than k.", "",
        "| model | cell | units | params | test bpc | carried bpc | "
        + " | ".join(f"reset {k}" for k in resets) + " | " + " | ".join(f"gain {k}" for k in resets)
        + " | training time |",
        "| --- | --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in resets) + " | "
        + " | ".join("---:" for _ in resets) + " | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['cell']} | {r['units']} | {r['params']:,} | {_fmt(r['test_bpc'])} | "
            f"{_fmt(r['carried_bpc'])} | " + " | ".join(_fmt(r["reset_bpc"][k]) for k in resets) + " | "
            + " | ".join(f"{r['gain_bpc'][k]:+.3f}" for k in resets) + f" | {_fmt_time(r['training_time_s'])} |")
    bins = list(rows[0]["newline_bpc"])
    lines += ["", "## Loss by distance since the last newline (carried state, bits/char)", "",
              "| model | " + " | ".join(f"{b} chars" for b in bins) + " |",
              "| --- | " + " | ".join("---:" for _ in bins) + " |"]
    for r in rows:
        lines.append(f"| {r['name']} | " + " | ".join(_fmt(r["newline_bpc"][b]) for b in bins) + " |")
    params = [r["params"] for r in rows]
    spread = (max(params) - min(params)) / min(params)
    lines += ["", "## Notes", "",
              f"- Parameter counts differ by at most {spread:.1%} between models"
              + (" (more than 5 %: the comparison is not parameter-matched)." if spread > 0.05 else "."),
              "- Numbers come from one training run per kind; differences of a few hundredths of a bit "
              "are within run-to-run noise and should not be read as a ranking.", ""]
    return "\n".join(lines)


def comparison_plot(result: dict, path: str | os.PathLike) -> Path:
    """Writes the PNG: bpc against reset interval (carried at the right) and bpc by newline distance."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from textgen.plots import save_figure_atomic

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    resets = result["resets"]
    xs = list(range(len(resets) + 1))
    for r in result["rows"]:
        left.plot(xs, [r["reset_bpc"][k] for k in resets] + [r["carried_bpc"]], marker="o", label=r["name"])
        bins = list(r["newline_bpc"])
        right.plot(range(len(bins)), [r["newline_bpc"][b] if r["newline_bpc"][b] is not None else float("nan")
                                      for b in bins], marker="o", label=r["name"])
    left.set_xticks(xs, [f"reset {k}" for k in resets] + ["carried"])
    left.set_ylabel("bits per character")
    left.set_title("context ablation")
    right.set_xticks(range(len(bins)), bins)
    right.set_xlabel("characters since the last newline")
    right.set_title("loss within a line (carried)")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    return save_figure_atomic(fig, path)


def write_comparison(result: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Writes `cell_comparison.md` and `cell_comparison.png` into `out_dir` (each atomically)."""
    from textgen.config import atomic_write_text

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CompareError(f"--out {out} is a file, not a folder")
    png = comparison_plot(result, out / PLOT_FILE)
    md = out / MARKDOWN_FILE
    atomic_write_text(md, comparison_markdown(result))
    return md, png
