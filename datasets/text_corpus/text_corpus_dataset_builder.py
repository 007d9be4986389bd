"""text_corpus: a user's own text files as a TFDS dataset, one builder config per corpus.

The corpus is the files in the order given (folders expanded to their `*.txt` files, sorted),
decoded strictly (`textgen.textfiles`: a bad byte or a binary file is refused with its offset; a
UTF-8 byte-order mark is dropped) and joined with a newline after any file that does not end in one.
`train`, `validation` and `test` are contiguous slices of that text by character position (default
90 / 5 / 5, as TFDS cuts tiny_shakespeare), so validation and test are text the model never saw in
training, not shuffled neighbours of it.

Each example is a piece of at most `CHUNK_CHARS` characters of one split, in order (`index` 0, 1,
...; shuffling is disabled), so a 200 MB corpus is written and read piece by piece and never held as
one string. The dataset's metadata records every source file (path, bytes, characters, sha256,
encoding) and the split boundaries, which is how `textgen data prepare text` knows whether a second
preparation under the same name is the same corpus.

A config is made per corpus (`TextCorpusConfig`) by `textgen.corpus`, which scans the files first;
reading a prepared corpus later needs only its folder (`tfds.builder_from_directory`).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from textgen.textfiles import iter_text

VERSION = tfds.core.Version("1.0.0")
CHUNK_CHARS = 1 << 18  # characters per example: 256k characters are 0.25-1 MB of UTF-8
SPLITS = ("train", "validation", "test")


class TextCorpusConfig(tfds.core.BuilderConfig):
    """One corpus: its scanned source files and split boundaries."""

    def __init__(self, *, sources: Sequence[dict] = (), bounds: Sequence[int] = (0, 0, 0), **kwargs):
        """Args:
            sources: per file {"path", "encoding", "bytes", "characters", "sha256", "newline_added"}.
            bounds: character offsets (end of train, end of validation, total) in the joined text.
            **kwargs: forwarded to `tfds.core.BuilderConfig` (name, description).
        """
        super().__init__(version=VERSION, release_notes={"1.0.0": "Contiguous 90/5/5-style splits."}, **kwargs)
        self.sources = [dict(s) for s in sources]
        self.bounds = tuple(int(b) for b in bounds)


def joined_pieces(sources: Sequence[dict]) -> Iterator[str]:
    """The corpus text in pieces: every file's text, plus "\\n" where a file does not end in one."""
    for source in sources:
        for piece in iter_text(source["path"], source["encoding"]):
            yield piece
        if source["newline_added"]:
            yield "\n"


def split_chunks(sources: Sequence[dict], start: int, end: int, chunk: int = CHUNK_CHARS) -> Iterator[str]:
    """Characters [start, end) of the joined text, in pieces of at most `chunk` characters."""
    position = 0  # characters of the joined text before `piece`
    buffer: list[str] = []
    held = 0
    for piece in joined_pieces(sources):
        lo, hi = max(start - position, 0), min(end - position, len(piece))
        position += len(piece)
        if lo < hi:
            part = piece[lo:hi]
            while part:
                take = part[: chunk - held]
                buffer.append(take)
                held += len(take)
                part = part[len(take):]
                if held == chunk:
                    yield "".join(buffer)
                    buffer, held = [], 0
        if position >= end:
            break
    if held:
        yield "".join(buffer)


class Builder(tfds.core.GeneratorBasedBuilder):
    """A user's text corpus; see the module docstring."""

    VERSION = VERSION
    RELEASE_NOTES = {"1.0.0": "Contiguous 90/5/5-style splits."}
    BUILDER_CONFIGS = [TextCorpusConfig(name="default", description="Set by textgen for each corpus.")]

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        train_end, val_end, total = config.bounds
        metadata = tfds.core.MetadataDict(
            sources=config.sources,
            splits={"train": [0, train_end], "validation": [train_end, val_end], "test": [val_end, total]},
            characters=total,
        )
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),  # a contiguous piece of the split, in order
                "index": tfds.features.Scalar(dtype=np.int64),  # the piece's position in its split
            }),
            supervised_keys=None,
            disable_shuffling=True,  # pieces must stay in text order
            metadata=metadata,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # the files are local; nothing is downloaded
        train_end, val_end, total = self.builder_config.bounds
        ranges = {"train": (0, train_end), "validation": (train_end, val_end), "test": (val_end, total)}
        return {split: self._generate_examples(*ranges[split]) for split in SPLITS}

    def _generate_examples(self, start: int, end: int):
        for index, text in enumerate(split_chunks(self.builder_config.sources, start, end)):
            yield index, {"text": text, "index": index}

