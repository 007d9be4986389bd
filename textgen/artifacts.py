"""A model directory: `model.keras`, `config.json`, `metadata.json` (+ history, curves, card).

Every write is atomic (temporary name in the same folder, then `os.replace`), so a crash never
leaves a half-written model where a good one was.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import keras

from textgen import config as config_lib
from textgen import tasks
from textgen.atomic import replacing
from textgen.errors import TextgenError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
# What textgen writes at the top of a model directory (textgen.folders: what --overwrite may replace).
MODEL_DIR_ENTRIES = (MODEL_FILE, CONFIG_FILE, METADATA_FILE, CARD_FILE)

class ModelDirError(TextgenError, ValueError):
    """A model directory is missing, incomplete or inconsistent."""


@dataclasses.dataclass
class ModelDir:
    """A loaded model directory."""

    path: Path
    model: keras.Model
    config: Any  # the model config of a registered task (textgen.tasks)
    metadata: dict

    @property
    def task(self) -> str:
        return tasks.for_config(self.config).name


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Atomically writes `data` as indented JSON."""
    config_lib.atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file; a malformed one raises `ModelDirError` naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelDirError(f"{path} is not valid JSON: {err}") from err


def save_keras_atomic(model: keras.Model, path: str | os.PathLike) -> None:
    """`model.save` to a temporary `.keras` beside `path`, then rename over it."""
    with replacing(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_model_dir(out_dir: str | os.PathLike, model: keras.Model, config: Any, metadata: dict) -> Path:
    """Writes model, config and metadata into `out_dir` (created if needed); returns its path."""
    task = tasks.for_config(config)  # TypeError for a config no task has
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ModelDirError(f"cannot save a model into {str(out)!r}: it is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata)
    metadata.setdefault("task", task.name)
    metadata.update(task.saved_metadata(model))
    save_keras_atomic(model, out / MODEL_FILE)
    config_lib.save_config(config, out / CONFIG_FILE)
    write_json(out / METADATA_FILE, metadata)
    return out


def architecture_vs_config(model: keras.Model, config: Any) -> dict[str, tuple[Any, Any]]:
    """{field: (value in config, value read from the model)} for the recurrent stack and embedding.

    A config.json copied from another run would otherwise mislabel the model (and the app would
    show the wrong cell kind), so loading compares what the file says with what the graph holds.
    """
    from textgen.models.rnn import cell_kind

    layers = []
    while True:  # rnn_0, rnn_1, ... (bi_rnn_i when Bidirectional)
        found = [layer for layer in model.layers if layer.name in (f"rnn_{len(layers)}", f"bi_rnn_{len(layers)}")]
        if not found:
            break
        layers.append(found[0])
    if not layers:
        return {"rnn.layers": (config.rnn.layers, 0)}
    first = layers[0]
    inner = first.forward_layer if isinstance(first, keras.layers.Bidirectional) else first
    try:
        kind = cell_kind(first)
    except ValueError:
        kind = type(inner).__name__
    embedding = next((layer for layer in model.layers if layer.name == "embedding"), None)
    return {
        "rnn.cell": (config.rnn.cell, kind),
        "rnn.units": (config.rnn.units, getattr(inner.cell, "units", None)),
        "rnn.layers": (config.rnn.layers, len(layers)),
        "rnn.bidirectional": (config.rnn.bidirectional, isinstance(first, keras.layers.Bidirectional)),
        "embedding_dim": (config.embedding_dim, getattr(embedding, "output_dim", None)),
    }


def check_model_dir_arg(path) -> None:
    """Raises ModelDirError unless `path` is a str or os.PathLike (None, numbers... are refused)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ModelDirError(f"a model directory must be given as a path (str or os.PathLike); got {path!r}")


def load_model_dir(path: str | os.PathLike, compile: bool = False) -> ModelDir:
    """Loads a model directory written by `save_model_dir`, checking that it is complete.

    Raises:
        ModelDirError: the folder or one of its files is missing or damaged, `config.json`
            does not describe the model in `model.keras` (cell kind, units, layers, direction,
            embedding size), the task in `metadata.json` is not the config's, or the vocabulary
            stored in `metadata.json` disagrees with the one inside `model.keras`.
    """
    check_model_dir_arg(path)
    path = Path(path)
    if not path.exists():
        raise ModelDirError(f"model directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise ModelDirError(f"{str(path)!r} is a file; give the model directory that holds {MODEL_FILE}")
    missing = [name for name in (MODEL_FILE, CONFIG_FILE) if not (path / name).is_file()]
    if missing:
        raise ModelDirError(f"{path} is not a textgen model directory: missing {', '.join(missing)}")
    try:
        config = config_lib.load_config(path / CONFIG_FILE)
    except config_lib.ConfigError as err:
        raise ModelDirError(str(err)) from err
    try:
        owner = tasks.for_config(config)
    except TypeError:
        raise ModelDirError(f"{path / CONFIG_FILE} holds a {type(config).__name__}, not a model config") from None
    metadata = read_json(path / METADATA_FILE) if (path / METADATA_FILE).is_file() else {}
    if not isinstance(metadata, dict):
        raise ModelDirError(f"{path / METADATA_FILE} must hold a JSON object; got {type(metadata).__name__}")
    task = metadata.get("task")
    if task is not None and task != owner.name:
        raise ModelDirError(f"{path}: metadata.json says task {task!r} but config.json holds a "
                            f"{type(config).__name__} ({owner.name}); the files belong to different models")
    import textgen  # noqa: F401  (registers the custom cells before loading)

    # A .keras file is a zip archive. Keras reports a truncated one as "File not found", which
    # sends the user looking in the wrong place, so check the archive first.
    if not zipfile.is_zipfile(path / MODEL_FILE):
        raise ModelDirError(f"{path / MODEL_FILE} is truncated or corrupted (not a .keras zip archive); "
                            "save or copy the model again")
    try:
        model = keras.models.load_model(path / MODEL_FILE, compile=compile)
    except Exception as err:  # a damaged archive or a foreign model: say which file, on one line
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelDirError(f"cannot load {path / MODEL_FILE}: {first_line}") from err
    mismatches = [
        f"{key}: config.json says {want!r}, model.keras has {got!r}"
        for key, (want, got) in owner.architecture(model, config).items()
        if want != got
    ]
    if mismatches:
        raise ModelDirError(f"{path}: config.json does not describe model.keras ({'; '.join(mismatches)})")
    problem = owner.check_loaded(model, metadata)
    if problem:
        raise ModelDirError(f"{path}: {problem}")
    return ModelDir(path=path, model=model, config=config, metadata=metadata)
