"""aclimdb: IMDB reviews from a manually supplied `aclImdb_v1.tar.gz` (no network).

Same features and splits as the catalog `imdb_reviews` (text, label neg/pos; train 25,000,
test 25,000, unsupervised 50,000 with label -1), but the archive comes from `manual_dir` and is
accepted only when its size and sha256 match a row of this folder's `checksums.tsv`: the original
archive or the faithful rebuild (see README.md). The archive is read as a stream, never extracted.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from pathlib import Path

import tensorflow_datasets as tfds

ARCHIVE_NAME = "aclImdb_v1.tar.gz"
_CHECKSUMS = Path(__file__).with_name("checksums.tsv")
# Archive member paths: aclImdb/{train,test}/{pos,neg,unsup}/<id>_<rating>.txt
_MEMBER = re.compile(r"^aclImdb/(?P<split>train|test)/(?P<label>pos|neg|unsup)/[^/]+\.txt$")


class SourceError(ValueError):
    """The manually supplied archive is missing, truncated, altered or unreadable."""


def _known_archives() -> dict[str, int]:
    """sha256 -> size in bytes of every accepted archive (rows of checksums.tsv)."""
    known = {}
    for line in _CHECKSUMS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            _url, size, sha256, _filename = line.split("\t")
            known[sha256] = int(size)
    return known


KNOWN_ARCHIVES: dict[str, int] = _known_archives()


def verify_archive(path: Path) -> str:
    """Returns the archive's sha256 after checking it is one of `KNOWN_ARCHIVES`; `SourceError` otherwise."""
    path = Path(os.fspath(path))  # TFDS hands out etils paths; their stat() differs
    if not path.is_file():
        raise SourceError(f"{path} not found; {Builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip().splitlines()[0]}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    sha256, size = digest.hexdigest(), path.stat().st_size
    if KNOWN_ARCHIVES.get(sha256) != size:
        raise SourceError(
            f"{path} ({size} bytes, sha256 {sha256}) is not a known-good {ARCHIVE_NAME} (truncated or corrupted?); "
            f"accepted sha256: {', '.join(KNOWN_ARCHIVES)}. Download it again from "
            "http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz")
    return sha256


class Builder(tfds.core.GeneratorBasedBuilder):
    """IMDB movie reviews read from a manually supplied archive."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: imdb_reviews features and splits from a verified manual archive."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Put {ARCHIVE_NAME} in the manual folder (`--manual-dir DIR`, TFDS default <download_dir>/manual).
    Get it from http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz (84,125,825 bytes) or use
    the faithful rebuild (56,743,801 bytes); the sha256 values accepted are listed in checksums.tsv.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=["neg", "pos"]),
            }),
            supervised_keys=("text", "label"),
            homepage="http://ai.stanford.edu/~amaas/data/sentiment/",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        archive = Path(dl_manager.manual_dir) / ARCHIVE_NAME
        verify_archive(archive)  # before anything is written
        return {
            "train": self._generate_examples(archive, "train", labeled=True),
            "test": self._generate_examples(archive, "test", labeled=True),
            "unsupervised": self._generate_examples(archive, "train", labeled=False),
        }

    def _generate_examples(self, archive: Path, split: str, labeled: bool):
        """Streams the tar (`r|gz`: sequential, nothing on disk) and yields (member path, example)."""
        try:
            with tarfile.open(archive, mode="r|gz") as tar:
                for member in tar:
                    match = _MEMBER.match(member.name)
                    if not member.isfile() or not match or match["split"] != split:
                        continue
                    if (match["label"] == "unsup") == labeled:
                        continue
                    text = tar.extractfile(member).read().decode("utf-8").strip()
                    yield member.name, {"text": text, "label": match["label"] if labeled else -1}
        except (tarfile.TarError, EOFError, OSError) as err:  # unreadable despite a known checksum
            raise SourceError(f"cannot read {archive}: {err}") from err
