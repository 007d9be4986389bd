"""Prepared TFDS corpora: prepare and describe a dataset, read its splits as tf.data (text, sentiment examples).

Training code reads prepared TFDS datasets, never URLs. The names a user can give and what is known
about each live in `textgen.catalog`; a user's own text corpora in `textgen.corpus`; cutting text
into character windows in `textgen.windows`. Their names stay importable from here.

Every failure a user can fix raises `DataError` with a message that says how.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import socket
import sys
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from textgen import corpus
from textgen.catalog import (  # noqa: F401  (re-exported: callers read the catalog through textgen.data)
    CATALOG_NAMES, DATASET_NAMES, DATASETS_DIR, IMDB_ORIGINAL_SHA256, DatasetSpec, _SPECS, _data_dir,
    default_data_dir, load_builder_module,
)
from textgen.errors import DataError
from textgen.windows import SHUFFLE_WINDOWS, char_windows, piece_windows  # noqa: F401  (re-exported)

# Source files shipped inside textgen (textgen/data_files/<builder>/<manual_file>): used as the
# manual_dir when none is given, so these datasets prepare offline (TFDS still verifies the checksum).
SHIPPED_SOURCES = Path(__file__).resolve().parent / "data_files"
NETWORK_TIMEOUT_S = 4.0  # how long to wait for a TCP connection before calling the machine offline


def spec(name: str) -> DatasetSpec:
    """The `DatasetSpec` of a user-facing name: a catalog name, or the name of a user's text corpus
    (`textgen data prepare text --name NAME`); `DataError` listing the known names otherwise."""
    if not isinstance(name, str):
        raise DataError(f"a dataset name must be a string; got {name!r}")
    if name in _SPECS:
        return _SPECS[name]
    plain = name.removeprefix(corpus.BUILDER + "/")
    if corpus.NAME_PATTERN.match(plain) and plain.split("/")[0] not in {n.split("/")[0] for n in DATASET_NAMES}:
        return DatasetSpec(name=plain, builder=corpus.BUILDER, config=plain, kind="text", local=True, manual_file="",
                           url="", sha256=(), host=None, user=True)
    raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}, or the name of a "
                    "corpus of your own prepared with `textgen data prepare text --name NAME FILE...`")


# --------------------------------------------------------------------------------------------
# Builders


def builder(name: str, data_dir=None):
    """The TFDS builder of a user-facing dataset name (nothing is downloaded or prepared)."""
    import tensorflow_datasets as tfds

    s = spec(name)
    if s.user:
        return corpus.read_builder(s.config, data_dir)
    cls = load_builder_module(s.builder).Builder if s.local else tfds.builder_cls(s.builder)
    kwargs = {"data_dir": os.fspath(_data_dir(data_dir))}
    if s.config is not None:
        kwargs["config"] = s.config
    return cls(**kwargs)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_manual_file(s: DatasetSpec, manual_dir: Path) -> None:
    """Refuses a missing, truncated or altered source file before TFDS touches data_dir."""
    path = manual_dir / s.manual_file
    if not path.is_file():
        raise DataError(
            f"{s.name}: {path} not found; put the file {s.manual_file} (sha256 {s.sha256[0]}, from {s.url}) "
            f"in {manual_dir}")
    got = _sha256(path)
    if got not in s.sha256:
        hint = " (for the IMDB rebuild use the dataset name 'aclimdb')" if s.name == "imdb_reviews" else ""
        raise DataError(
            f"{s.name}: {path} has sha256 {got}, expected {' or '.join(s.sha256)}: the file is truncated, "
            f"corrupted or a different version; download it again from {s.url}{hint}")


def _reachable(host: str, port: int, timeout: float = NETWORK_TIMEOUT_S) -> bool:
    """True when a TCP connection to host:port opens within `timeout` seconds (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo has no timeout of its own, so the probe runs in a daemon thread we stop waiting for.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _how_to_prepare(s: DatasetSpec) -> str:
    return (f"run `textgen data prepare {s.name} --manual-dir DIR` with DIR holding {s.manual_file} "
            f"(sha256 {s.sha256[0]}, from {s.url})")


def _folders(roots: Sequence[Path]) -> set[Path]:
    """Every folder under (and including) the existing `roots`."""
    found: set[Path] = set()
    for root in roots:
        if root.is_dir():
            found.add(root)
            found.update(p for p in root.rglob("*") if p.is_dir())
    return found


def _cleanup_failed(roots: Sequence[Path], existed: set[Path]) -> None:
    """Removes what a failed preparation left: TFDS's `incomplete.*` folders and new empty folders."""
    for root in roots:
        if root.is_dir():
            for leftover in list(root.rglob("incomplete.*")):
                if leftover not in existed:  # never another process's preparation in progress
                    shutil.rmtree(leftover, ignore_errors=True)
    # Deepest first, so a parent is empty once its new children are gone; then the parents of roots.
    new = sorted(_folders(roots) - existed, key=lambda p: -len(p.parts))
    for folder in new + [r.parent for r in roots if r.parent not in existed]:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def prepare(name: str, data_dir=None, manual_dir=None) -> dict:
    """Downloads (or reads from `manual_dir`) and prepares a dataset; a no-op when already prepared.

    Args:
        name: one of `DATASET_NAMES`.
        data_dir: TFDS data directory (default `default_data_dir()`).
        manual_dir: folder holding manually downloaded source files (see `DatasetSpec.manual_file`).

    Returns:
        `{"name": name, "data_dir": str}`.
    """
    import tensorflow_datasets as tfds

    s = spec(name)
    data_dir = _data_dir(data_dir)
    b = builder(name, data_dir)  # a user's corpus that is not prepared: DataError saying how to prepare it
    if b.is_prepared():
        return {"name": name, "data_dir": os.fspath(data_dir)}
    manual = Path(manual_dir).expanduser() if manual_dir is not None else None
    if manual is None and (SHIPPED_SOURCES / s.builder / s.manual_file).is_file():
        manual = SHIPPED_SOURCES / s.builder  # e.g. tiny_shakespeare's input.txt, shipped with textgen
    if manual is not None and not manual.is_dir():
        raise DataError(f"--manual-dir {manual} is not a folder")
    if manual is not None and (manual / s.manual_file).exists():
        _check_manual_file(s, manual)
    elif (data_dir / "downloads" / s.builder / s.manual_file).is_file():
        pass  # fetched by an earlier preparation (vader_sentiment); the builder verifies it again
    elif s.host is None:
        raise DataError(f"{name} is not prepared in {data_dir}; {_how_to_prepare(s)}")
    elif not _reachable(*s.host):
        # Checked first because a download attempt offline can retry for minutes before failing.
        raise DataError(f"{name} is not prepared in {data_dir} and {s.host[0]} cannot be reached (offline?); "
                        + _how_to_prepare(s))
    config = tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual) if manual is not None else None,
        try_download_gcs=False,  # never wait on GCS for prepared data: offline it would hang or fail late
    )
    # data_dir/<builder>[/<config>]/<version>: TFDS writes into an incomplete.* sibling and renames.
    roots = [Path(b.data_path).parents[1 if b.builder_config else 0], data_dir / "downloads"]
    existed = _folders(roots) | ({data_dir} if data_dir.is_dir() else set())
    errors = _source_errors(s)
    try:
        # TFDS prints progress to stdout; keep stdout for results (`describe --json` prints one object).
        with contextlib.redirect_stdout(sys.stderr):
            b.download_and_prepare(download_dir=os.fspath(roots[1]), download_config=config)
    except errors as err:
        _cleanup_failed(roots, existed)
        raise DataError(f"{name}: {err}") from err
    except OSError as err:  # disk full, no permission, data_dir is a file, ...
        _cleanup_failed(roots, existed)
        raise DataError(f"{name}: cannot prepare in {data_dir}: {err}") from err
    except BaseException:
        _cleanup_failed(roots, existed)
        raise
    return {"name": name, "data_dir": os.fspath(data_dir)}


def _source_errors(s: DatasetSpec) -> tuple[type[BaseException], ...]:
    """Exception types that mean "bad or missing source file", turned into `DataError`."""
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    errors: list[type[BaseException]] = [NonMatchingChecksumError, DataError]
    if s.local:
        errors.append(load_builder_module(s.builder).SourceError)
    return tuple(errors)


def _prepared_builder(name: str, data_dir=None, manual_dir=None):
    prepare(name, data_dir=data_dir, manual_dir=manual_dir)
    return builder(name, data_dir)


def split_names(name: str, data_dir=None, manual_dir=None) -> list[str]:
    """The dataset's split names, e.g. `["train", "validation", "test"]` (prepares it when needed)."""
    return list(_prepared_builder(name, data_dir, manual_dir).info.splits)


def split_size(name: str, split: str, data_dir=None, manual_dir=None) -> int:
    """The number of examples in a split, from the prepared dataset's info (no pass over the data)."""
    b = _prepared_builder(name, data_dir, manual_dir)
    _require_split(b, name, split)
    return int(b.info.splits[split].num_examples)


def dataset_version(name: str, data_dir=None, manual_dir=None) -> str:
    """The prepared dataset's TFDS version, e.g. `"1.0.0"` (recorded in a model's metadata)."""
    return str(_prepared_builder(name, data_dir, manual_dir).info.version)


def _as_dataset(b, name: str, split: str) -> tf.data.Dataset:
    _require_split(b, name, split, base=split.split("[")[0].split("+")[0])
    return b.as_dataset(split=split, shuffle_files=False)


def _require_split(b, name: str, split: str, base: str | None = None) -> None:
    """DataError unless the prepared builder `b` has the split (`base`: a split expression's first name)."""
    if (base or split) not in b.info.splits:
        raise DataError(f"{name} has no split {split!r}; splits: {', '.join(b.info.splits)}")


# --------------------------------------------------------------------------------------------
# Text corpora


def load_text_corpus(name: str, split: str, data_dir=None, manual_dir=None) -> tf.data.Dataset:
    """Scalar tf.string examples of a text corpus (tiny_shakespeare: one example per split, the whole text).

    Prepares the dataset first when needed (see `prepare`).
    """
    s = spec(name)
    if s.kind != "text":
        raise DataError(f"{name} is a sentiment corpus; use load_sentiment_corpus")
    b = _prepared_builder(name, data_dir, manual_dir)
    return _as_dataset(b, name, split).map(lambda ex: ex["text"], num_parallel_calls=tf.data.AUTOTUNE)


def read_text(name: str, split: str, data_dir=None, manual_dir=None) -> str:
    """The split's text as one Python string (examples joined in order)."""
    return "".join(t.decode("utf-8") for t in load_text_corpus(name, split, data_dir, manual_dir).as_numpy_iterator())


# --------------------------------------------------------------------------------------------
# Sentiment corpora


def load_sentiment_corpus(name: str, split: str, data_dir=None, manual_dir=None) -> tf.data.Dataset:
    """Uniform sentiment examples `{"text": tf.string, "label": tf.int64, "valence": tf.float32}`.

    `label` is 0 neg / 1 pos (-1 for IMDB's unsupervised split); `valence` is the corpus's mean
    human rating (VADER: -4..4) or NaN when the corpus has none (IMDB).
    """
    s = spec(name)
    if s.kind != "sentiment":
        raise DataError(f"{name} is a text corpus; use load_text_corpus")
    b = _prepared_builder(name, data_dir, manual_dir)
    has_valence = "valence" in b.info.features

    def uniform(ex):
        valence = tf.cast(ex["valence"], tf.float32) if has_valence else tf.constant(math.nan, tf.float32)
        return {"text": ex["text"], "label": tf.cast(ex["label"], tf.int64), "valence": valence}

    return _as_dataset(b, name, split).map(uniform, num_parallel_calls=tf.data.AUTOTUNE)


def sentiment_train_validation(name: str, validation_fraction: float, train_limit: int = 0, data_dir=None,
                               manual_dir=None) -> tuple[tf.data.Dataset, tf.data.Dataset, int, str]:
    """(train, validation, train examples, what the validation split is) as a sentiment run trains on:
    the first `train_limit` train examples (0 = all) and the corpus's validation split or, when it has
    none, the last `validation_fraction` of those train examples (before shuffling), held out. Training
    and `textgen evaluate --split validation` both call this, so they read the same examples."""
    kw = dict(data_dir=data_dir, manual_dir=manual_dir)
    train = load_sentiment_corpus(name, "train", **kw)
    n_train = split_size(name, "train", **kw)
    if train_limit:
        train, n_train = train.take(train_limit), min(n_train, train_limit)
    if "validation" in split_names(name, **kw):
        return train, load_sentiment_corpus(name, "validation", **kw), n_train, "validation"
    n_val = max(1, int(n_train * validation_fraction))
    return (train.take(n_train - n_val), train.skip(n_train - n_val), n_train - n_val,
            f"last {n_val} examples of train")


# --------------------------------------------------------------------------------------------
# describe


def describe(name: str, data_dir=None, manual_dir=None) -> dict:
    """Per-split counts: `{"name", "splits": {split: {"examples", "characters" | "labels"}}}`.

    Text corpora report characters (Unicode code points); sentiment corpora report labels
    (`neg`, `pos`, and `unlabelled` for IMDB's unsupervised split).
    """
    s = spec(name)
    b = _prepared_builder(name, data_dir, manual_dir)
    splits: dict[str, dict] = {}
    for split in b.info.splits:
        ds = _as_dataset(b, name, split)
        examples = int(b.info.splits[split].num_examples)
        if s.kind == "text":
            lengths = ds.map(lambda ex: tf.strings.length(ex["text"], unit="UTF8_CHAR")).batch(1024)
            splits[split] = {"examples": examples, "characters": int(sum(int(np.sum(x)) for x in lengths))}
        else:
            labels = np.concatenate([x for x in ds.map(lambda ex: ex["label"]).batch(8192).as_numpy_iterator()])
            counts = {"neg": int(np.sum(labels == 0)), "pos": int(np.sum(labels == 1))}
            if np.any(labels == -1):
                counts["unlabelled"] = int(np.sum(labels == -1))
            splits[split] = {"examples": examples, "labels": counts}
    out = {"name": name, "splits": splits}
    if s.user:  # where the text came from, as recorded when it was prepared
        meta = b.info.metadata or {}
        out["sources"] = [{k: src[k] for k in ("path", "bytes", "characters", "sha256", "encoding")}
                          for src in meta.get("sources", [])]
        out["version"] = str(b.info.version)
    dropped = b.info.metadata.get("dropped_neutral") if b.info.metadata is not None else None
    if dropped is not None:
        out["dropped_neutral"] = dict(dropped)
    return out
