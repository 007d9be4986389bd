"""A user's own text as a TFDS dataset: find the files, scan them, prepare `text_corpus/NAME`.

`textgen data prepare text --name NAME PATH...` and `textgen train charlm --text-file PATH` come
here. The files are scanned once before anything is written (strict decoding, sha256, sizes and
character counts, in bounded memory), the split boundaries are planned, and the builder in
`datasets/text_corpus/` writes the TFDS dataset under `DATA_DIR/text_corpus/NAME/1.0.0`.

Preparing the same files again is a no-op; other content under the same name is refused unless
`overwrite`, and then the old dataset is kept until the new one is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable, Sequence

from textgen.catalog import CATALOG_NAMES, _data_dir, load_builder_module
from textgen.errors import DataError
from textgen.textfiles import TextFileError, check_encoding, iter_text

BUILDER = "text_corpus"
VERSION = "1.0.0"
DEFAULT_SPLIT = (90, 5, 5)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
NAME_RULE = "1-64 characters: lower-case letters, digits, '_', '-' or '.', starting with a letter or digit"


def check_name(name) -> str:
    """`name` if it is a valid corpus name (and not a catalog dataset's), else DataError."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DataError(f"{name!r} is not a valid corpus name ({NAME_RULE})")
    if name in CATALOG_NAMES or name.split("/")[0] in {n.split("/")[0] for n in CATALOG_NAMES}:
        raise DataError(f"{name!r} is the name of a catalog dataset; choose another --name for your corpus")
    return name


def name_from_file(path: str | os.PathLike) -> str:
    """A corpus name made from a file name: `My Lyrics (2019).txt` -> `my_lyrics_2019`."""
    stem = Path(path).stem.lower()
    name = re.sub(r"[^a-z0-9_.-]+", "_", stem).strip("_.-")[:64] or "corpus"
    if not name[0].isalnum():
        name = "c" + name[:63]
    try:
        return check_name(name)
    except DataError:
        return check_name(f"my_{name}"[:64])


def parse_split(text: str | Sequence[int]) -> tuple[int, int, int]:
    """`"90,5,5"` -> (90, 5, 5): three non-negative integers adding up to 100, train > 0."""
    try:
        parts = tuple(int(p) for p in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError) as err:
        raise DataError(f"--split takes three percentages such as 90,5,5; got {text!r}") from err
    if len(parts) != 3 or sum(parts) != 100 or min(parts) < 0 or parts[0] == 0 or parts[1] == 0:
        raise DataError(f"--split takes three percentages train,validation,test adding up to 100, with train and "
                        f"validation > 0 (e.g. 90,5,5); got {text!r}")
    return parts  # type: ignore[return-value]


def find_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files to read: files as given, folders as their `*.txt` files (recursively, sorted)."""
    if not paths:
        raise DataError("give at least one text file or folder")
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not files:
                raise DataError(f"folder {path} holds no *.txt file")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        elif path.exists():
            raise DataError(f"{path} is neither a file nor a folder")
        else:
            raise DataError(f"{path} does not exist")
    unique, seen = [], set()
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def scan(files: Sequence[Path], encoding: str = "utf-8", progress: Callable[[int, int], None] | None = None
         ) -> list[dict]:
    """Per file: {"path", "encoding", "bytes", "characters", "sha256", "newline_added"}; reads each
    file in chunks (bounded memory) and refuses a bad one (TextFileError names the file and offset)."""
    encoding = check_encoding(encoding)
    total_bytes = sum(f.stat().st_size for f in files)
    done = 0
    sources = []
    for i, path in enumerate(files):
        size = path.stat().st_size
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        characters, last = 0, ""
        for piece in iter_text(path, encoding):
            characters += len(piece)
            last = piece[-1]
            if progress is not None:
                progress(done + min(size, characters), total_bytes)  # characters stand in for bytes read
        done += size
        sources.append({"path": os.fspath(path.resolve()), "encoding": encoding, "bytes": size,
                        "characters": characters, "sha256": digest.hexdigest(),
                        "newline_added": characters > 0 and last != "\n" and i < len(files) - 1})
    return sources


def min_characters(seq_len: int, batch_size: int, split: Sequence[int] = DEFAULT_SPLIT) -> int:
    """The shortest corpus that gives one training batch and one validation window after the split."""
    span = seq_len + 1
    train = -(-batch_size * span * 100 // split[0])
    validation = -(-span * 100 // split[1])
    return max(train, validation) + span  # + one window: a piece's last partial window is dropped


def plan_bounds(total: int, split: Sequence[int]) -> tuple[int, int, int]:
    """(end of train, end of validation, total) in characters for percentages `split`."""
    train_end = total * split[0] // 100
    val_end = train_end + total * split[1] // 100
    return train_end, val_end, total


def corpus_dir(name: str, data_dir=None) -> Path:
    """Where the prepared corpus lives: DATA_DIR/text_corpus/NAME/1.0.0."""
    return _data_dir(data_dir) / BUILDER / name / VERSION


def is_prepared(name: str, data_dir=None) -> bool:
    return (corpus_dir(name, data_dir) / "dataset_info.json").is_file()


def read_builder(name: str, data_dir=None):
    """The prepared corpus as a read-only TFDS builder (needs only its folder)."""
    import tensorflow_datasets as tfds

    if not is_prepared(name, data_dir):
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(CATALOG_NAMES)}, or prepare a text "
                        f"corpus of your own under that name: `textgen data prepare text --name {name} FILE_OR_FOLDER "
                        f"...` (none is prepared in {corpus_dir(name, data_dir).parents[1]})")
    return tfds.builder_from_directory(os.fspath(corpus_dir(name, data_dir)))


def recorded(name: str, data_dir=None) -> dict | None:
    """The prepared corpus's metadata ({"sources", "splits", "characters"}), or None."""
    if not is_prepared(name, data_dir):
        return None
    meta = read_builder(name, data_dir).info.metadata
    return dict(meta) if meta is not None else None


def _identity(sources: Sequence[dict], bounds: Sequence[int]) -> tuple:
    """What makes two preparations the same corpus: content (not where the files are) and splits."""
    return tuple((s["sha256"], s["encoding"], s["newline_added"]) for s in sources), tuple(bounds)


def prepare_text_corpus(name: str, paths: Sequence[str | os.PathLike], *, split=DEFAULT_SPLIT, encoding="utf-8",
                        data_dir=None, overwrite: bool = False, min_characters: int = 0,
                        progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Prepares `paths` as the TFDS dataset `text_corpus/NAME`; returns a summary.

    Args:
        name: the corpus name (`check_name`).
        paths: text files and folders (their `*.txt` files, recursively).
        split: train, validation, test percentages.
        encoding: the files' encoding (a Python codec name).
        data_dir: TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).
        overwrite: replace a prepared corpus of the same name with other content.
        min_characters: refuse a corpus with fewer characters (what the caller's training needs).
        progress: called as (stage, done, total) while scanning and writing.
    Returns:
        {"name", "data_dir", "path", "characters", "files", "splits", "status": "prepared" | "unchanged"}.
    """
    name = check_name(name)
    split = parse_split(split)
    try:
        files = find_files(paths)
        sources = scan(files, encoding, (lambda d, t: progress("scan", d, t)) if progress else None)
    except TextFileError as err:
        raise DataError(str(err)) from err
    total = sum(s["characters"] + s["newline_added"] for s in sources)
    if total == 0:
        raise DataError(f"the corpus is empty: {', '.join(os.fspath(p) for p in paths)} hold no text")
    if total < min_characters:
        raise DataError(f"the corpus has {total:,} characters; training with these settings needs at least "
                        f"{min_characters:,} (lower --seq-len/--batch-size or give more text)")
    bounds = plan_bounds(total, split)
    if bounds[0] == 0 or bounds[1] == bounds[0]:
        raise DataError(f"the corpus has {total} characters: too few to cut train/validation/test {split}")
    summary = {"name": name, "data_dir": os.fspath(corpus_dir(name, data_dir).parents[2]),
               "path": os.fspath(corpus_dir(name, data_dir)), "characters": total, "files": len(sources),
               "splits": {"train": bounds[0], "validation": bounds[1] - bounds[0], "test": total - bounds[1]}}
    old = recorded(name, data_dir)
    if old is not None:
        old_bounds = (old["splits"]["train"][1], old["splits"]["validation"][1], old["characters"])
        if _identity(old["sources"], old_bounds) == _identity(sources, bounds):
            return {**summary, "status": "unchanged"}
        if not overwrite:
            raise DataError(f"a different corpus is already prepared as {name!r} (other files or content); "
                            "choose another --name or pass --overwrite to replace it")
    _build(name, sources, bounds, data_dir, progress)
    return {**summary, "status": "prepared"}


def _build(name: str, sources: list[dict], bounds: tuple[int, int, int], data_dir, progress) -> None:
    """Runs the builder; an old preparation is moved aside first and restored if the build fails."""
    import tensorflow_datasets as tfds

    module = load_builder_module(BUILDER)
    config = module.TextCorpusConfig(name=name, sources=sources, bounds=bounds,
                                     description=f"textgen text corpus {name}")
    target = corpus_dir(name, data_dir)
    aside = target.with_name(f".{target.name}.textgen-old-{os.getpid()}")
    if target.exists():
        os.replace(target, aside)
    try:
        builder = module.Builder(config=config, data_dir=os.fspath(_data_dir(data_dir)))
        with contextlib.redirect_stdout(sys.stderr):  # TFDS's progress bars: keep stdout for results
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    except BaseException:
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        for leftover in target.parent.glob("incomplete.*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if aside.exists():
            os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)
