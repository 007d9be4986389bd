"""vader_sentiment: the four human-rated sentiment corpora of Hutto & Gilbert (ICWSM 2014).

Source: the vaderSentiment 3.3.2 sdist on PyPI (MIT) carries
`additional_resources/hutto_ICWSM_2014.tar.gz` with four `*_GroundTruth.txt` files of
tab-separated `id, mean valence (-4..4), text` (CRLF lines; HTML entities such as `&amp;`, in a few
NYT rows escaped twice as `&amp;amp;`, are unescaped). The sdist is taken from the manual folder when it
is there, else fetched once with the ordinary pip client into the download folder; its sha256 is
verified, and both archives are read in memory.

Every row with a valence of exactly 0 is dropped (no polarity); the counts are kept in the
dataset's metadata (`dropped_neutral`). Splits are 80/10/10 by a stable hash of `domain/id`.
"""

from __future__ import annotations

import hashlib
import html
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

SDIST_NAME = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
PIP_TIMEOUT_S = 300  # pip's own retries stay inside this
_INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
# domain -> ground-truth file inside hutto_ICWSM_2014.tar.gz
DOMAIN_FILES = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
SPLIT_PERCENT = (("train", 80), ("validation", 10), ("test", 10))


class SourceError(ValueError):
    """The sdist is missing, cannot be fetched, or is not the expected file."""


class VaderConfig(tfds.core.BuilderConfig):
    """One config per domain, plus `all`."""

    def __init__(self, *, domains: tuple[str, ...], **kwargs):
        """Args:
            domains: the domains (keys of `DOMAIN_FILES`) this config reads.
            **kwargs: forwarded to `tfds.core.BuilderConfig`.
        """
        super().__init__(version=tfds.core.Version("1.0.0"), **kwargs)
        self.domains = domains


def split_of(domain: str, row_id: str) -> str:
    """Stable split of a row: sha256 of `domain/id` -> bucket 0..99 -> train <80, validation <90, test."""
    bucket = int.from_bytes(hashlib.sha256(f"{domain}/{row_id}".encode()).digest()[:8], "big") % 100
    edge = 0
    for split, percent in SPLIT_PERCENT:
        edge += percent
        if bucket < edge:
            return split
    raise AssertionError("SPLIT_PERCENT must add up to 100")


def parse_ground_truth(raw: bytes, domain: str):
    """Yields `(id, valence, text)` from a `*_GroundTruth.txt` file (CRLF lines, HTML entities)."""
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 3:
            raise SourceError(f"{DOMAIN_FILES[domain]} line {number}: expected 3 tab-separated fields")
        row_id, valence, text = fields
        yield row_id, float(valence), unescape(text).strip()


def unescape(text: str) -> str:
    """HTML entities -> characters, repeated because some NYT rows are escaped twice (`&amp;amp;`)."""
    for _ in range(3):
        plain = html.unescape(text)
        if plain == text:
            break
        text = plain
    return text


def read_ground_truth(sdist: Path) -> dict[str, bytes]:
    """domain -> raw ground-truth bytes, read from the sdist and the archive inside it (in memory)."""
    try:
        with tarfile.open(sdist, mode="r:gz") as outer:
            inner_member = next((m for m in outer.getmembers() if m.name.endswith(_INNER)), None)
            if inner_member is None:
                raise SourceError(f"{sdist} has no {_INNER}")
            inner_bytes = outer.extractfile(inner_member).read()
        found = {}
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            for member in inner.getmembers():
                for domain, name in DOMAIN_FILES.items():
                    if member.isfile() and Path(member.name).name == name:
                        found[domain] = inner.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise SourceError(f"cannot read {sdist}: {err}") from err
    missing = sorted(set(DOMAIN_FILES) - set(found))
    if missing:
        raise SourceError(f"{sdist}: no ground-truth file for {', '.join(missing)}")
    return found


def verify_sdist(path: Path) -> None:
    """`SourceError` unless `path` has the sha256 of the vaderSentiment 3.3.2 sdist."""
    path = Path(os.fspath(path))  # TFDS hands out etils paths
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != SDIST_SHA256:
        raise SourceError(
            f"{path} has sha256 {got}, expected {SDIST_SHA256} (truncated or corrupted?); delete it and get it "
            f"again: python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR")


def fetch_sdist(dest_dir: Path) -> Path:
    """Downloads the sdist with pip into `dest_dir` (atomically: a temp folder, then a rename)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "vaderSentiment==3.3.2", "-d", tmp]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired as err:
            raise SourceError(f"pip download of vaderSentiment 3.3.2 timed out after {PIP_TIMEOUT_S} s") from err
        fetched = Path(tmp) / SDIST_NAME
        if done.returncode != 0 or not fetched.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SourceError(f"pip could not download vaderSentiment 3.3.2 ({last}); "
                              f"put {SDIST_NAME} in the manual folder instead")
        verify_sdist(fetched)
        target = dest_dir / SDIST_NAME
        fetched.replace(target)
    return target


class Builder(tfds.core.GeneratorBasedBuilder):
    """VADER's human-rated sentence corpora: movies, tweets, amazon, nyt, all, all_but_<domain>."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: four domains, neutral rows dropped, 80/10/10 hash split; "
                              "all_but_<domain> configs hold one domain out."}
    # all_but_<domain>: the other three, to measure transfer to a domain a model never trained on.
    BUILDER_CONFIGS = [VaderConfig(name=d, description=f"{d} only", domains=(d,)) for d in DOMAIN_FILES] + [
        VaderConfig(name="all", description="all four domains", domains=tuple(DOMAIN_FILES))] + [
        VaderConfig(name=f"all_but_{d}", description=f"the three domains other than {d}",
                    domains=tuple(o for o in DOMAIN_FILES if o != d)) for d in DOMAIN_FILES]
    DEFAULT_CONFIG_NAME = "all"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Optional. Put {SDIST_NAME} (sha256 {SDIST_SHA256}) in the manual folder, e.g. with
    `python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR`.
    Without it the builder runs that command itself (needs access to PyPI).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=["neg", "pos"]),
                "valence": tfds.features.Scalar(dtype=np.float32),
                "domain": tfds.features.Text(),
            }),
            supervised_keys=("text", "label"),
            homepage="https://github.com/cjhutto/vaderSentiment",
            metadata=tfds.core.MetadataDict(),
        )

    def _sdist(self, dl_manager) -> Path:
        """The verified sdist: manual folder first, then an earlier pip download, else pip now."""
        try:
            manual = Path(dl_manager.manual_dir) / SDIST_NAME
        except AssertionError:  # TFDS: the manual folder does not exist or is empty
            manual = None
        if manual is not None and manual.is_file():
            verify_sdist(manual)  # a wrong manual file is refused, never silently replaced
            return manual
        cached = Path(dl_manager.download_dir) / "vader_sentiment" / SDIST_NAME
        if cached.is_file():
            verify_sdist(cached)
            return cached
        return fetch_sdist(cached.parent)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        raw = read_ground_truth(self._sdist(dl_manager))
        rows = {split: [] for split, _ in SPLIT_PERCENT}
        dropped = {split: 0 for split, _ in SPLIT_PERCENT}
        for domain in self.builder_config.domains:
            for row_id, valence, text in parse_ground_truth(raw[domain], domain):
                split = split_of(domain, row_id)
                if valence == 0:
                    dropped[split] += 1
                else:
                    rows[split].append((domain, row_id, valence, text))
        self.info.metadata["dropped_neutral"] = dropped
        return {split: self._generate_examples(split_rows) for split, split_rows in rows.items()}

    def _generate_examples(self, rows):
        for domain, row_id, valence, text in rows:
            yield f"{domain}/{row_id}", {
                "text": text, "label": "pos" if valence > 0 else "neg", "valence": valence, "domain": domain}
