"""Cached loaders for the app. Cached objects are shared by every session and thread, so they
hold only immutable things (models, compiled functions, cards), never per-user RNN state.

Model folders are found in `saved_models/` of this checkout, in `~/.textgen/models/` (where
`textgen import` output can go), and in every folder of `$TEXTGEN_MODEL_DIRS` (os.pathsep-separated).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "saved_models"
USER_MODELS = Path(os.environ.get("TEXTGEN_HOME") or "~/.textgen").expanduser() / "models"  # Train page output
DOCS = REPO / "docs"
FEATURED = ("shakespeare_char",)  # listed first in its folder: the pages' default model


def model_roots() -> list[Path]:
    """Folders searched for model directories, in display order."""
    extra = [Path(p) for p in os.environ.get("TEXTGEN_MODEL_DIRS", "").split(os.pathsep) if p]
    return extra + [SHIPPED, USER_MODELS]


def _task_of(model_dir: Path) -> str | None:
    try:
        kind = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    from textgen import tasks  # the registry, without TensorFlow

    return next((name for name in tasks.names() if tasks.get(name).config_class.__name__ == kind), None)


def _is_a(name: str, task: str) -> bool:
    """Whether task `name` is `task` or extends it (an average of sentiment models is a sentiment model)."""
    from textgen import tasks

    return isinstance(tasks.get(name), type(tasks.get(task)))


def list_models(task: str | None = None) -> dict[str, str]:
    """{display name: path} of every model directory (of `task` or a task extending it, if given), shipped ones first."""
    found: dict[str, str] = {}
    for root in model_roots():
        if not root.is_dir():
            continue
        # Featured models first (the English character model a new user expects), then by name.
        for d in sorted((p for p in root.iterdir() if (p / "model.keras").is_file()),
                        key=lambda p: (p.name not in FEATURED, p.name)):
            t = _task_of(d)
            if t is None or (task is not None and not _is_a(t, task)):
                continue
            name = d.name if d.name not in found else f"{d.name} ({root})"
            found[name] = str(d)
    return found


def models_or_stop(task: str) -> dict[str, str]:
    """`list_models(task)`; when there is none, a message saying how to get one, and the page stops."""
    models = list_models(task)
    if not models:
        from textgen import tasks

        what = tasks.get(task).models.removesuffix(" models")  # "character", "sentiment"
        st.info(f"No {what} models found. Train one with `textgen train {task} …` "
                "or put a model folder in `saved_models/`.")
        st.stop()
    return models


def load_or_stop(loader, path: str, *args):
    """`loader(path, *args)` (one of the cached loaders below); a broken model folder shows a
    message and stops the page instead of a stack trace."""
    from textgen.errors import TextgenError

    import components as ui

    try:
        return loader(path, *args)
    except TextgenError as err:
        st.error(f"This model cannot be used: {ui.plain(err)}")  # paths may hold Markdown characters
        st.stop()


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def load_model_dir(path: str):
    """The loaded `textgen.artifacts.ModelDir` (shared, read-only)."""
    from textgen.artifacts import load_model_dir as load

    return load(path)


@st.cache_resource(show_spinner="Compiling the sampler…", max_entries=16)
def sampler(path: str, precision: str = "float32"):
    """The batched sampler (`textgen.serving.BatchedSampler`) for a character model, shared by every
    session: concurrent requests run as rows of one compiled call instead of fighting for the CPU.
    precision "float32" or "int8" (the TFLite loop, `textgen.lite`). Per-user state (RNN states,
    text so far) lives in each request, never here.

    Every batch size up to `ui.WARM_BATCH` rows is compiled here, once, behind the spinner, so a
    user's first click shows the sampler's speed and not XLA compile time."""
    from textgen.sampling import Sampler
    from textgen.serving import BatchedSampler

    import components as ui

    batcher = BatchedSampler(Sampler(load_model_dir(path).model, precision=precision),
                             chunk_size=ui.STREAM_CHUNK, workers=ui.SAMPLER_WORKERS)
    batcher.warm_up(ui.WARM_BATCH)
    return batcher


@st.cache_resource(show_spinner="Compiling the predictor…", max_entries=16)
def predictor(path: str):
    """A compiled sentiment predictor shared by every session; texts that concurrent sessions
    send while a call runs go together into the next call (`textgen.serving.BatchedPredictor`)."""
    from textgen.inference import SentimentPredictor
    from textgen.serving import BatchedPredictor

    return BatchedPredictor(SentimentPredictor(load_model_dir(path).model))


@st.cache_resource(show_spinner=False)
def vader_analyzer():
    """vaderSentiment's lexicon rule, for the comparison score."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@st.cache_data(show_spinner=False)
def read_text_file(path: str) -> str | None:
    p = Path(path)
    return p.read_text(encoding="utf-8") if p.is_file() else None


@st.cache_data(show_spinner=False)
def read_json_file(path: str) -> dict | None:
    p = Path(path)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return None


@st.cache_resource(show_spinner=False)
def job_queue():
    """The server's training queue (textgen.jobs), with a thread that advances it every second, so
    queued jobs start and finished ones are noticed even while no page is open."""
    import logging
    import threading
    import time

    from textgen.jobs import JobQueue

    queue = JobQueue()

    def advance():
        while True:
            try:
                queue.tick()
            except Exception:  # noqa: BLE001  (one bad job must not stop the queue)
                logging.getLogger("textgen.jobs").exception("advancing the training queue failed")
            time.sleep(1.0)

    threading.Thread(target=advance, name="textgen-jobs", daemon=True).start()
    return queue
