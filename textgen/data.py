"""TFDS corpora -> tf.data: prepare/describe datasets, character windows, sentiment examples.

Training code reads prepared TFDS datasets, never URLs. Names the user can give:

- `tiny_shakespeare`: the TFDS catalog dataset (one example per split: the whole text).
- `imdb_reviews`: the TFDS catalog dataset (needs the original archive or the network).
- `aclimdb`: our builder in `datasets/aclimdb/` for a manually supplied IMDB archive.
- `vader_sentiment/{movies,tweets,amazon,nyt,all}`: our builder in `datasets/vader_sentiment/`.

Every failure a user can fix raises `DataError` with a message that says how.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import shutil
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from textgen.errors import DataError
from textgen.vocab import char_to_id_layer

# Our builders live outside the package in the `tfds new` layout (see datasets/*/README.md).
DATASETS_DIR = Path(__file__).resolve().parents[1] / "datasets"
# Source files shipped inside textgen (textgen/data_files/<builder>/<manual_file>): used as the
# manual_dir when none is given, so these datasets prepare offline (TFDS still verifies the checksum).
SHIPPED_SOURCES = Path(__file__).resolve().parent / "data_files"
NETWORK_TIMEOUT_S = 4.0  # how long to wait for a TCP connection before calling the machine offline
IMDB_ORIGINAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"


@dataclass(frozen=True)
class DatasetSpec:
    """What `textgen.data` knows about one user-facing dataset name."""

    name: str  # user-facing name, e.g. "vader_sentiment/tweets"
    builder: str  # TFDS builder name
    config: str | None  # TFDS builder config, or None for the default
    kind: str  # "text" (character corpus) or "sentiment" (text, label[, valence])
    local: bool  # True: our builder in datasets/<builder>/; False: TFDS catalog
    manual_file: str  # file name the builder looks for in manual_dir
    url: str  # where the source file comes from (for messages)
    sha256: tuple[str, ...]  # accepted sha256 values of `manual_file`
    host: tuple[str, int] | None  # (host, port) probed before a network download; None: never downloads
    user: bool = False  # a user's own text corpus (`textgen data prepare text`, datasets/text_corpus/)


_SPECS: dict[str, DatasetSpec] = {}


def _add(spec: DatasetSpec) -> None:
    _SPECS[spec.name] = spec


_add(DatasetSpec(
    name="tiny_shakespeare", builder="tiny_shakespeare", config=None, kind="text", local=False,
    manual_file="input.txt",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    # TFDS's registered checksum (tensorflow_datasets/datasets/tiny_shakespeare/checksums.tsv).
    sha256=("86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",),
    host=("raw.githubusercontent.com", 443),
))
_add(DatasetSpec(
    name="imdb_reviews", builder="imdb_reviews", config=None, kind="sentiment", local=False,
    manual_file="aclImdb_v1.tar.gz", url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256=(IMDB_ORIGINAL_SHA256,), host=("ai.stanford.edu", 80),
))
_add(DatasetSpec(
    name="aclimdb", builder="aclimdb", config=None, kind="sentiment", local=True,
    manual_file="aclImdb_v1.tar.gz", url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    # The original archive and the faithful rebuild (see datasets/aclimdb/README.md).
    sha256=(IMDB_ORIGINAL_SHA256, "91ab3079f70de8a9697b762bba75c97e4c82d1f1b49e151618e666091fb6a7fc"),
    host=None,  # never downloads: the archive must be in manual_dir
))
for _domain in ("movies", "tweets", "amazon", "nyt", "all"):
    _add(DatasetSpec(
        name=f"vader_sentiment/{_domain}", builder="vader_sentiment", config=_domain, kind="sentiment", local=True,
        manual_file="vaderSentiment-3.3.2.tar.gz", url="https://pypi.org/project/vaderSentiment/3.3.2/ (sdist)",
        sha256=("5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",),
        host=("pypi.org", 443),  # the builder fetches the sdist with pip when it is not in manual_dir
    ))

DATASET_NAMES: tuple[str, ...] = tuple(_SPECS)
CATALOG_NAMES = DATASET_NAMES  # the names a user's corpus may not take


def spec(name: str) -> DatasetSpec:
    """The `DatasetSpec` of a user-facing name: a catalog name, or the name of a user's text corpus
    (`textgen data prepare text --name NAME`); `DataError` listing the known names otherwise."""
    if not isinstance(name, str):
        raise DataError(f"a dataset name must be a string; got {name!r}")
    if name in _SPECS:
        return _SPECS[name]
    from textgen import corpus

    plain = name.removeprefix(corpus.BUILDER + "/")
    if corpus.NAME_PATTERN.match(plain) and plain.split("/")[0] not in {n.split("/")[0] for n in DATASET_NAMES}:
        return DatasetSpec(name=plain, builder=corpus.BUILDER, config=plain, kind="text", local=True, manual_file="",
                           url="", sha256=(), host=None, user=True)
    raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}, or the name of a "
                    "corpus of your own prepared with `textgen data prepare text --name NAME FILE...`")


def default_data_dir() -> Path:
    """`$TFDS_DATA_DIR` or `~/tensorflow_datasets` (TFDS's default)."""
    return Path(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def _data_dir(data_dir) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


# --------------------------------------------------------------------------------------------
# Builders


def load_builder_module(builder_name: str):
    """Imports `datasets/<name>/<name>_dataset_builder.py` as module `<name>.<name>_dataset_builder`.

    TFDS finds a builder's README.md/CITATIONS.bib through its package, so the folder is imported as
    package `<name>` (by file path: `datasets/` is not on sys.path), the way its builder test
    imports it. Executed inside `skip_registration()`: we instantiate `Builder` directly, and a later
    import of the same file by another route can then never collide in TFDS's registry.
    """
    import tensorflow_datasets as tfds

    module_name = f"{builder_name}.{builder_name}_dataset_builder"
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = DATASETS_DIR / builder_name
    path = folder / f"{builder_name}_dataset_builder.py"
    if not path.is_file():
        raise DataError(f"builder file {path} is missing: reinstall textgen from its repository (editable)")
    if builder_name not in sys.modules:
        package_spec = importlib.util.spec_from_file_location(
            builder_name, folder / "__init__.py", submodule_search_locations=[os.fspath(folder)])
        package = importlib.util.module_from_spec(package_spec)
        sys.modules[builder_name] = package
        package_spec.loader.exec_module(package)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        with tfds.core.registered.skip_registration():
            module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def builder(name: str, data_dir=None):
    """The TFDS builder of a user-facing dataset name (nothing is downloaded or prepared)."""
    import tensorflow_datasets as tfds

    s = spec(name)
    if s.user:
        from textgen import corpus

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


def dataset_version(name: str, data_dir=None, manual_dir=None) -> str:
    """The prepared dataset's TFDS version, e.g. `"1.0.0"` (recorded in a model's metadata)."""
    return str(_prepared_builder(name, data_dir, manual_dir).info.version)


def _as_dataset(b, name: str, split: str) -> tf.data.Dataset:
    base = split.split("[")[0].split("+")[0]
    if base not in b.info.splits:
        raise DataError(f"{name} has no split {split!r}; splits: {', '.join(b.info.splits)}")
    return b.as_dataset(split=split, shuffle_files=False)


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


def char_windows(text: str, vocabulary: Sequence[str], seq_len: int, batch_size: int, shuffle: bool = True,
                 seed: int | None = None, drop_remainder: bool = True, repeat: bool = False) -> tf.data.Dataset:
    """Non-overlapping windows of `seq_len + 1` characters -> (chars, next-char ids) batches.

    Args:
        text: the corpus.
        vocabulary: the model's characters (id i = vocabulary[i - 1]; unknown -> 0).
        seq_len: characters per training sequence (window length is seq_len + 1).
        batch_size: sequences per batch.
        shuffle: shuffle the windows (all of them: one buffer) with `seed`.
        seed: shuffle seed; the same seed gives the same order.
        drop_remainder: drop the last partial batch.
        repeat: repeat forever (for `steps_per_epoch` training).

    Returns:
        Dataset of `(chars, targets)`: `chars` (batch, seq_len) tf.string single characters,
        `targets` (batch, seq_len) int64 ids of the characters one position later.
    """
    if seq_len < 1 or batch_size < 1:
        raise DataError(f"seq_len and batch_size must be >= 1; got {seq_len} and {batch_size}")
    chars = tf.strings.unicode_split(tf.constant(text), "UTF-8", errors="replace")  # (n,)
    n_windows = (int(chars.shape[0]) if chars.shape[0] is not None else 0) // (seq_len + 1)
    need = seq_len + 1 if not drop_remainder else (seq_len + 1) * batch_size
    if n_windows == 0 or (drop_remainder and n_windows < batch_size):
        raise DataError(f"text of {int(chars.shape[0])} characters is too short: one batch needs {need} "
                        f"(seq_len {seq_len} + 1, batch_size {batch_size}); lower seq_len/batch_size")
    windows = tf.reshape(chars[: n_windows * (seq_len + 1)], (n_windows, seq_len + 1))  # (windows, L+1)
    ids = char_to_id_layer(vocabulary)(windows)  # (windows, L+1) int64, computed once
    ds = tf.data.Dataset.from_tensor_slices((windows[:, :-1], ids[:, 1:]))
    if shuffle:
        ds = ds.shuffle(n_windows, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


SHUFFLE_WINDOWS = 16384  # shuffle buffer in windows: all of tiny_shakespeare's; ~50 MB of characters at seq_len 100


def piece_windows(pieces: tf.data.Dataset, vocabulary: Sequence[str], seq_len: int, batch_size: int,
                  shuffle: bool = True, seed: int | None = None, drop_remainder: bool = True, repeat: bool = False,
                  shuffle_buffer: int = SHUFFLE_WINDOWS) -> tf.data.Dataset:
    """`char_windows` over a stream of text pieces (the examples of a TFDS split), in bounded memory.

    Each piece is cut into non-overlapping windows of `seq_len + 1` characters (the last partial
    window of a piece is dropped); windows are shuffled through a buffer of `shuffle_buffer`
    windows. A corpus of one piece (tiny_shakespeare) gives exactly `char_windows`'s windows.

    Returns:
        Dataset of `(chars, targets)`: (batch, seq_len) tf.string characters and (batch, seq_len)
        int64 ids of the characters one position later.
    """
    if seq_len < 1 or batch_size < 1:
        raise DataError(f"seq_len and batch_size must be >= 1; got {seq_len} and {batch_size}")
    span = seq_len + 1
    lookup = char_to_id_layer(vocabulary)

    def windows_of(text):
        chars = tf.strings.unicode_split(text, "UTF-8", errors="replace")  # (n,)
        n = tf.shape(chars)[0] // span
        return tf.data.Dataset.from_tensor_slices(tf.reshape(chars[: n * span], (n, span)))  # (n, L+1) rows

    ds = pieces.flat_map(windows_of)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda w: (w[:, :-1], lookup(w[:, 1:])), num_parallel_calls=tf.data.AUTOTUNE)  # ids once per batch
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


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
