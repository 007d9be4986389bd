"""textgen.data on the real corpora in ../shared/data (skipped locally without it, failing under CI=true).

Exact split sizes and label counts, the text itself, and the refusal of altered source files.
The prepared data dirs come from session fixtures in conftest.py (IMDB once: about 20 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textgen import cli, data
from textgen.errors import DataError
from textgen.vocab import CharCodec, build_vocabulary

# Counts measured on vaderSentiment 3.3.2 (see docs/datasets.md): (train, validation, test) examples
# with labels (neg, pos) each, and the neutral rows dropped per split.
VADER = {
    "movies": {"train": (4270, 4234), "validation": (521, 501), "test": (535, 507), "dropped": (30, 2, 5)},
    "tweets": {"train": (1024, 2342), "validation": (159, 292), "test": (116, 263), "dropped": (2, 2, 0)},
    "amazon": {"train": (1188, 1724), "validation": (133, 210), "test": (161, 194), "dropped": (82, 8, 8)},
    "nyt": {"train": (2170, 1749), "validation": (280, 238), "test": (292, 217), "dropped": (197, 19, 28)},
}
VADER_ROWS = {"movies": 10605, "tweets": 4200, "amazon": 3708, "nyt": 5190}  # rows in each GroundTruth file


def test_tiny_shakespeare_split_sizes(shakespeare_data_dir):
    summary = data.describe("tiny_shakespeare", data_dir=shakespeare_data_dir)
    assert summary == {"name": "tiny_shakespeare", "splits": {
        "train": {"examples": 1, "characters": 1003854},
        "validation": {"examples": 1, "characters": 55770},
        "test": {"examples": 1, "characters": 55770}}}


def test_tiny_shakespeare_text_is_the_source_cut_90_5_5(shakespeare_data_dir, shared_data):
    source = (shared_data / "tiny_shakespeare" / "input.txt").read_text()
    parts = [data.read_text("tiny_shakespeare", s, data_dir=shakespeare_data_dir)
             for s in ("train", "validation", "test")]
    assert "".join(parts) == source
    assert parts[0].startswith("First Citizen:\nBefore we proceed any further")
    (only,) = list(data.load_text_corpus("tiny_shakespeare", "test", data_dir=shakespeare_data_dir))
    assert only.shape == () and only.dtype.name == "string"


def test_char_windows_on_shakespeare(shakespeare_data_dir):
    text = data.read_text("tiny_shakespeare", "validation", data_dir=shakespeare_data_dir)
    codec = CharCodec(build_vocabulary(data.read_text("tiny_shakespeare", "train", data_dir=shakespeare_data_dir)))
    ds = data.char_windows(text, codec.vocabulary, 100, 64, seed=1)
    batches = list(ds)
    assert len(batches) == (len(text) // 101) // 64
    chars, targets = batches[0]
    for c, t in zip(chars.numpy()[:8], targets.numpy()[:8]):
        window = "".join(x.decode() for x in c) + codec.decode(t)[-1:]
        assert window in text and codec.decode(t) == window[1:]


def test_cli_describe_shakespeare(shakespeare_data_dir, capsys):
    assert cli.main(["data", "describe", "tiny_shakespeare", "--data-dir", str(shakespeare_data_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [s["characters"] for s in summary["splits"].values()] == [1003854, 55770, 55770]


@pytest.mark.slow
def test_imdb_counts(prepared_data_dir):
    summary = data.describe("aclimdb", data_dir=prepared_data_dir)
    half = {"neg": 12500, "pos": 12500}
    assert summary["splits"] == {
        "train": {"examples": 25000, "labels": half},
        "test": {"examples": 25000, "labels": half},
        "unsupervised": {"examples": 50000, "labels": {"neg": 0, "pos": 0, "unlabelled": 50000}}}
    # What wordlm reads instead of counting the texts: the prepared dataset's own record.
    assert {s: data.split_size("aclimdb", s, data_dir=prepared_data_dir) for s in summary["splits"]} == {
        "train": 25000, "test": 25000, "unsupervised": 50000}
    with pytest.raises(DataError, match="no split 'validation'"):
        data.split_size("aclimdb", "validation", data_dir=prepared_data_dir)


@pytest.mark.slow
def test_imdb_examples(prepared_data_dir):
    ds = data.load_sentiment_corpus("aclimdb", "test", data_dir=prepared_data_dir)
    for ex in ds.take(50).as_numpy_iterator():
        text = ex["text"].decode("utf-8")
        assert text == text.strip() and len(text) > 10
        assert ex["label"] in (0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("domain", list(VADER))
def test_vader_counts(prepared_data_dir, domain):
    summary = data.describe(f"vader_sentiment/{domain}", data_dir=prepared_data_dir)
    want = VADER[domain]
    for split in ("train", "validation", "test"):
        neg, pos = want[split]
        assert summary["splits"][split] == {"examples": neg + pos, "labels": {"neg": neg, "pos": pos}}
    assert tuple(summary["dropped_neutral"].values()) == want["dropped"]
    kept = sum(s["examples"] for s in summary["splits"].values())
    assert kept + sum(want["dropped"]) == VADER_ROWS[domain]


@pytest.mark.slow
def test_vader_all_and_examples(prepared_data_dir):
    summary = data.describe("vader_sentiment/all", data_dir=prepared_data_dir)
    for split in ("train", "validation", "test"):
        assert summary["splits"][split]["labels"] == {
            "neg": sum(VADER[d][split][0] for d in VADER), "pos": sum(VADER[d][split][1] for d in VADER)}
    examples = list(data.load_sentiment_corpus("vader_sentiment/all", "train", data_dir=prepared_data_dir)
                    .as_numpy_iterator())
    assert all((ex["valence"] > 0) == (ex["label"] == 1) and ex["valence"] != 0 for ex in examples)
    assert all(-4 <= ex["valence"] <= 4 for ex in examples)
    texts = [ex["text"].decode() for ex in examples]
    assert not any("\r" in t or "&amp;" in t or "&quot;" in t for t in texts)
    assert any("&" in t for t in texts)  # entities were unescaped, not dropped


@pytest.mark.slow
def test_vader_all_but_one_domain_holds_the_other_three(prepared_data_dir, vader_sdist_dir):
    data.prepare("vader_sentiment/all_but_tweets", data_dir=prepared_data_dir, manual_dir=vader_sdist_dir)
    summary = data.describe("vader_sentiment/all_but_tweets", data_dir=prepared_data_dir)
    others = [d for d in VADER if d != "tweets"]
    for split in ("train", "validation", "test"):
        assert summary["splits"][split]["labels"] == {
            "neg": sum(VADER[d][split][0] for d in others), "pos": sum(VADER[d][split][1] for d in others)}
    texts = lambda name, split: {ex["text"] for ex in data.load_sentiment_corpus(  # noqa: E731
        name, split, data_dir=prepared_data_dir).as_numpy_iterator()}
    held = set().union(*(texts("vader_sentiment/all_but_tweets", s) for s in ("train", "validation", "test")))
    tweets = set().union(*(texts("vader_sentiment/tweets", s) for s in ("train", "validation", "test")))
    assert held and tweets and not held & tweets


# --------------------------------------------------------------------------------------------
# Altered source files are refused and leave nothing behind


def _altered(source: Path, folder: Path, how: str) -> Path:
    """A copy of `source` in `folder` (same file name) with one byte changed or the second half cut off."""
    folder.mkdir()
    raw = bytearray(source.read_bytes())
    if how == "one_byte":
        raw[len(raw) // 2] ^= 0x01
    else:
        raw = raw[: len(raw) // 2]
    (folder / source.name).write_bytes(bytes(raw))
    return folder


def _assert_nothing_prepared(data_dir: Path, builder: str) -> None:
    leftovers = [p for p in data_dir.rglob("*") if builder in p.parts or "incomplete" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("how", ["one_byte", "truncated"])
@pytest.mark.parametrize("name, source", [
    ("tiny_shakespeare", "tiny_shakespeare/input.txt"),
    ("aclimdb", "aclImdb/aclImdb_v1.tar.gz"),
    ("vader_sentiment/all", None),
])
def test_altered_source_is_refused(name, source, how, shared_data, vader_sdist_dir, tmp_path, capsys):
    src = shared_data / source if source else vader_sdist_dir / "vaderSentiment-3.3.2.tar.gz"
    manual = _altered(src, tmp_path / "manual", how)
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    with pytest.raises(DataError, match=f"has sha256 [0-9a-f]{{64}}, expected .*truncated, corrupted"):
        data.prepare(name, data_dir=data_dir, manual_dir=manual)
    assert cli.main(["data", "prepare", name, "--data-dir", str(data_dir), "--manual-dir", str(manual)]) == 2
    assert "truncated, corrupted" in capsys.readouterr().err
    _assert_nothing_prepared(data_dir, data.spec(name).builder)


@pytest.mark.parametrize("how", ["one_byte", "truncated"])
def test_builders_refuse_altered_sources_themselves(how, shared_data, vader_sdist_dir, tmp_path):
    """Without textgen.data's check in front, TFDS and our builders still refuse and clean up."""
    import tensorflow_datasets as tfds

    cases = [("tiny_shakespeare", shared_data / "tiny_shakespeare" / "input.txt", "checksum"),
             ("aclimdb", shared_data / "aclImdb" / "aclImdb_v1.tar.gz", "not a known-good"),
             ("vader_sentiment/nyt", vader_sdist_dir / "vaderSentiment-3.3.2.tar.gz", "expected 5d7c06e0")]
    for name, source, match in cases:
        manual = _altered(source, tmp_path / f"manual_{name.replace('/', '_')}", how)
        data_dir = tmp_path / "tfds"
        b = data.builder(name, data_dir)
        config = tfds.download.DownloadConfig(manual_dir=str(manual), try_download_gcs=False)
        with pytest.raises(Exception, match=match):
            b.download_and_prepare(download_dir=str(tmp_path / "downloads"), download_config=config)
        assert not b.is_prepared()
        assert not list(data_dir.rglob("incomplete*"))

