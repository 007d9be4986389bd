"""Presentation helpers shared by the pages: coloured text, heatmaps, limits of what we accept."""

from __future__ import annotations

import html
import json
import math
import re

import altair as alt
import numpy as np
import pandas as pd

MAX_TEXT_CHARS = 5000  # longest text a page accepts; longer input is truncated with a notice
MAX_INSIDE_CHARS = 400  # longest text traced on the Inside page (heatmaps stay readable)
MAX_UPLOAD_BYTES = 2_000_000  # batch-mode uploads larger than this are refused
MAX_BATCH_ROWS = 2000  # texts predicted per upload


def demote_headings(markdown: str) -> str:
    """A document's own headings (# title, ## sections) would dwarf the page: two levels down."""
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", markdown, flags=re.MULTILINE)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: str) -> str:
    """`text` (a model or file name, anything a user chose) escaped so st.markdown shows it literally:
    a backtick, asterisk or bracket in a folder name never starts code, emphasis or a link."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """(text cut to `limit` characters, whether it was cut)."""
    return (text[:limit], True) if len(text) > limit else (text, False)


def visible_char(ch: str) -> str:
    """A printable stand-in for whitespace and control characters."""
    if ch == "\n":
        return "↵"
    if ch == " ":
        return "␣"
    if ch == "\t":
        return "⇥"
    if ord(ch) < 32 or ord(ch) == 127:
        return f"\\x{ord(ch):02x}"
    return ch


def coloured_text_html(chars, values, known, tooltips=None, vmax: float | None = None) -> str:
    """Characters as spans tinted by `values` in [-vmax, vmax] (blue negative, red positive).

    Unknown characters (read as [UNK] by the model) get a dashed outline; `tooltips` show on hover.
    """
    values = np.asarray(values, dtype=float)
    vmax = vmax or float(np.max(np.abs(values))) or 1.0
    spans = []
    for i, ch in enumerate(chars):
        v = float(np.clip(values[i] / vmax, -1, 1))
        rgb = "220,60,60" if v > 0 else "60,110,220"
        style = f"background: rgba({rgb},{abs(v):.2f}); padding: 1px 0; border-radius: 2px;"
        if not known[i]:
            style += " outline: 1px dashed #c00;"
        title = html.escape(tooltips[i] if tooltips else f"{values[i]:+.3f}", quote=True)
        shown = "<br>" if ch == "\n" else html.escape(ch if ch.isprintable() else visible_char(ch))
        spans.append(f'<span title="{title}" style="{style}">{shown}</span>')
    return (
        '<div style="font-family: ui-monospace, monospace; font-size: 15px; line-height: 1.9; '
        'white-space: pre-wrap; word-break: break-all;">' + "".join(spans) + "</div>"
    )


def heatmap(matrix: np.ndarray, chars: list[str], title: str, domain=(-1.0, 1.0), scheme="redblue") -> alt.Chart:
    """Units × characters heatmap of a (time, units) array, with the character under each column."""
    steps, units = matrix.shape
    frame = pd.DataFrame(
        {
            "position": np.repeat(np.arange(steps), units),
            "unit": np.tile(np.arange(units), steps),
            "value": matrix.reshape(-1).astype(float),
            "char": np.repeat([visible_char(c) for c in chars], units),
        }
    )
    width = min(1100, max(420, 22 * steps))
    return (
        alt.Chart(frame, title=title)
        .mark_rect()
        .encode(
            x=alt.X("position:O", axis=alt.Axis(labelExpr=_label_expr(chars), labelAngle=0, title=None)),
            y=alt.Y("unit:O", title="unit", axis=alt.Axis(labelOverlap=True)),
            color=alt.Color("value:Q", scale=alt.Scale(scheme=scheme, domain=list(domain), reverse=scheme == "redblue")),
            tooltip=["position", "char", "unit", alt.Tooltip("value:Q", format="+.3f")],
        )
        .properties(width=width, height=max(220, min(480, 12 * units)))
    )


def _label_expr(chars: list[str]) -> str:
    labels = [visible_char(c).replace("\\", "\\\\").replace("'", "\\'") for c in chars]
    return "[" + ",".join(f"'{c}'" for c in labels) + "][datum.value]"


MAX_TRAJECTORY_WORDS = 120  # words plotted in the sentiment trajectory
MAX_TRAJECTORY_LABELS = 40  # words written under its x-axis; more overlap on a page-wide chart
FLAT_LABEL_CHARS = 80  # labels of at most this many characters in all fit unrotated under the chart
LABEL_PIXELS = 100  # longest x-axis label; Vega cuts longer words with "…" (the hover shows them whole)


def trajectory_ticks(count: int, max_labels: int = MAX_TRAJECTORY_LABELS) -> list[int]:
    """Word positions (1-based) labelled under the trajectory: all of them, or every k-th from the
    first when there are more than `max_labels` (the hover still names every word)."""
    step = max(1, math.ceil(count / max_labels))
    return list(range(1, count + 1, step))


def trajectory_chart(words: list[str], p_positive: list[float]) -> alt.LayerChart:
    """P(positive) after each word of a text, with the words themselves under the x-axis.

    x is the word's position 1..n (quantitative, so the line keeps its spacing); each tick's label
    is looked up in the word list by a Vega expression, rotated when they would not fit flat.
    """
    frame = pd.DataFrame({"word index": range(1, len(words) + 1), "word": words, "P(positive)": p_positive})
    ticks = trajectory_ticks(len(words))
    # A JSON array of ASCII-escaped strings is a valid Vega expression literal: quotes, backslashes,
    # emoji (as surrogate pairs) and U+2028 (a line break inside a JavaScript string) stay literal.
    labels = json.dumps(list(words), ensure_ascii=True)
    flat = sum(len(words[t - 1]) + 1 for t in ticks) <= FLAT_LABEL_CHARS
    # Vega tests overlap on the labels' axis-aligned boxes, which for text at -45° are far wider
    # than the glyphs: it would drop labels that do not touch. Parallel diagonal labels collide only
    # when ticks are closer than a line of text (~16 px; 40 ticks need ~650 px), so it is off for them.
    axis = alt.Axis(values=ticks, labelExpr=f"{labels}[datum.value - 1]", labelAngle=0 if flat else -45,
                    labelAlign="center" if flat else "right", labelLimit=LABEL_PIXELS,
                    labelOverlap="greedy" if flat else False)
    line = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("word index:Q", title="after word", axis=axis, scale=alt.Scale(domain=[1, max(len(words), 2)])),
            y=alt.Y("P(positive):Q", title="P(positive)", scale=alt.Scale(domain=[0, 1])),
            tooltip=["word index", "word", alt.Tooltip("P(positive):Q", format=".1%")],
        )
        # Streamlit fits the whole chart, labels included, into `height`: diagonal labels take up to
        # LABEL_PIXELS · sin 45° below the plot, so the chart grows by that much.
        .properties(height=260 if flat else 260 + int(LABEL_PIXELS * 0.71))
    )
    half = alt.Chart(pd.DataFrame({"y": [0.5]})).mark_rule(strokeDash=[4, 4], color="gray").encode(
        y=alt.Y("y:Q", title="P(positive)"))
    return line + half


def read_uploaded_texts(name: str, data: bytes) -> tuple[list[str], str | None]:
    """Texts from an uploaded .csv (a `text` column, or its only column) or .txt (one per line).

    Returns (texts, None) or ([], a message saying what is wrong).
    """
    import csv
    import io

    if len(data) > MAX_UPLOAD_BYTES:
        return [], f"The file is {len(data) / 1e6:.1f} MB; at most {MAX_UPLOAD_BYTES / 1e6:.0f} MB can be uploaded."
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "The file is not UTF-8 text; save it as UTF-8 and upload it again."
    if "\x00" in content:
        return [], "The file looks binary, not text."
    if name.lower().endswith(".csv"):
        try:
            rows = list(csv.reader(io.StringIO(content)))
        except csv.Error as err:
            return [], f"The CSV could not be read: {err}"
        if not rows:
            return [], "The CSV is empty."
        header = [h.strip().lower() for h in rows[0]]
        if len(header) == 1:
            # One column: a comma inside an unquoted text splits it into fields; join them back.
            body = rows[1:] if header == ["text"] else rows
            texts = [",".join(r) for r in body]
        elif "text" in header:
            col = header.index("text")
            texts = [r[col] for r in rows[1:] if len(r) > col]
        else:
            return [], "The CSV has several columns but none is called `text`."
    else:
        texts = content.splitlines()
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        return [], "The file holds no texts."
    if len(texts) > MAX_BATCH_ROWS:
        return [], f"The file holds {len(texts):,} texts; at most {MAX_BATCH_ROWS:,} are predicted at once."
    return [truncate(t, MAX_TEXT_CHARS)[0] for t in texts], None

MAX_GENERATE_CHARS = 2000  # longest generation the app offers
STREAM_CHUNK = 32  # characters per compiled call while streaming (smaller = smoother, a little slower)
WARM_BATCH = 8  # the batched sampler is compiled for up to this many rows when a model is loaded
SAMPLER_WORKERS = 1  # batches run side by side by the shared sampler (textgen.serving.BatchedSampler)
DEFAULT_PROMPT = "ROMEO:\n"  # the Generate page's starting values; the sampler is warmed up on them
DEFAULT_LENGTH = 300
