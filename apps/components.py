"""Presentation helpers shared by the pages: coloured text, heatmaps, limits of what we accept."""

from __future__ import annotations

import html
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
DEFAULT_PROMPT = "ROMEO:\n"  # the Generate page's starting values; the sampler is warmed up on them
DEFAULT_LENGTH = 300
