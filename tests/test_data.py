"""textgen.data without the real corpora: character windows, dataset names, errors, the data CLI.

Sentiment loading and `describe` run on the aclimdb builder's tiny dummy archive (accepted for the
test by adding its sha256), so these tests need neither the network nor ../shared/data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil

import numpy as np
import pytest

from textgen import cli, data
from textgen.errors import DataError
from textgen.vocab import CharCodec, build_vocabulary

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n"


def _rows(ds):
    """All (chars as str, target ids) rows of a char_windows dataset, in order."""
    rows = []
    for chars, targets in ds.as_numpy_iterator():
        for c, t in zip(chars, targets):
            rows.append(("".join(x.decode("utf-8") for x in c), t.tolist()))
    return rows


# --------------------------------------------------------------------------------------------
# char_windows


@pytest.mark.parametrize("text", [TEXT, "héllo wörld — ça va? 😀 日本語のテキスト" * 3, "ab" * 40])
def test_targets_are_inputs_shifted_by_one(text):
    codec = CharCodec(build_vocabulary(text))
    seq_len = 7
    rows = _rows(data.char_windows(text, codec.vocabulary, seq_len, 3, shuffle=False, drop_remainder=False))
    assert len(rows) == len(text) // (seq_len + 1)
    for i, (chars, targets) in enumerate(rows):
        window = text[i * (seq_len + 1): (i + 1) * (seq_len + 1)]  # non-overlapping, in order
        assert chars == window[:-1]
        assert codec.decode(targets) == window[1:]  # ids -> text round trip
        assert codec.decode(targets)[:-1] == chars[1:]


def test_shapes_and_dtypes():
    ds = data.char_windows(TEXT, build_vocabulary(TEXT), 10, 4, seed=0)
    chars, targets = next(iter(ds))
    assert chars.shape == (4, 10) and chars.dtype.name == "string"
    assert targets.shape == (4, 10) and targets.dtype.name == "int64"
    assert all(len(c) for c in chars.numpy().ravel())  # single characters, never empty


def test_shuffle_is_seeded_and_keeps_every_window():
    vocab = build_vocabulary(TEXT)
    plain = _rows(data.char_windows(TEXT, vocab, 5, 2, shuffle=False, drop_remainder=False))
    a = _rows(data.char_windows(TEXT, vocab, 5, 2, seed=7, drop_remainder=False))
    b = _rows(data.char_windows(TEXT, vocab, 5, 2, seed=7, drop_remainder=False))
    c = _rows(data.char_windows(TEXT, vocab, 5, 2, seed=8, drop_remainder=False))
    assert a == b
    assert a != plain and a != c
    assert sorted(map(str, a)) == sorted(map(str, plain))


def test_batches_remainder_and_repeat():
    vocab = build_vocabulary(TEXT)
    n_windows = len(TEXT) // 6  # 14 windows of 5 + 1 characters
    dropped = list(data.char_windows(TEXT, vocab, 5, 4, shuffle=False, drop_remainder=True))
    kept = list(data.char_windows(TEXT, vocab, 5, 4, shuffle=False, drop_remainder=False))
    assert len(dropped) == n_windows // 4 and len(kept) == -(-n_windows // 4)
    assert kept[-1][0].shape[0] == n_windows % 4
    repeated = list(data.char_windows(TEXT, vocab, 5, 4, shuffle=False, repeat=True).take(3 * len(dropped)))
    np.testing.assert_array_equal(repeated[len(dropped)][1].numpy(), dropped[0][1].numpy())


def test_unknown_characters_become_id_zero():
    rows = _rows(data.char_windows("abcabcabz", ["a", "b", "c"], 8, 1, shuffle=False))
    assert rows == [("abcabcab", [2, 3, 1, 2, 3, 1, 2, 0])]


@pytest.mark.parametrize("kwargs, match", [
    (dict(seq_len=100, batch_size=1), "too short"),
    (dict(seq_len=8, batch_size=100), "too short"),
    (dict(seq_len=0, batch_size=1), ">= 1"),
])
def test_bad_window_settings_are_refused(kwargs, match):
    with pytest.raises(DataError, match=match):
        data.char_windows(TEXT, build_vocabulary(TEXT), shuffle=False, **kwargs)


# --------------------------------------------------------------------------------------------
# Names, checksums, errors


def test_names_and_unknown_name():
    assert data.DATASET_NAMES == ("tiny_shakespeare", "imdb_reviews", "aclimdb", "vader_sentiment/movies",
                                  "vader_sentiment/tweets", "vader_sentiment/amazon", "vader_sentiment/nyt",
                                  "vader_sentiment/all", "vader_sentiment/all_but_movies",
                                  "vader_sentiment/all_but_tweets", "vader_sentiment/all_but_amazon",
                                  "vader_sentiment/all_but_nyt")
    from textgen.catalog import disjoint  # the held-out configs share no text with their domain

    assert disjoint("vader_sentiment/all_but_tweets", "vader_sentiment/tweets")
    assert not disjoint("vader_sentiment/all_but_tweets", "vader_sentiment/nyt")
    assert not disjoint("vader_sentiment/all", "vader_sentiment/movies") and disjoint("aclimdb", "vader_sentiment/all")
    # Any other valid name may be a corpus of the user's own (`data prepare text`): unknown until prepared.
    assert data.spec("shakespeare").user
    with pytest.raises(DataError, match="unknown dataset 'shakespeare'; choose one of: tiny_shakespeare.*"
                                        "textgen data prepare text --name shakespeare"):
        data.builder("shakespeare", data_dir="/nonexistent")
    with pytest.raises(DataError, match="unknown dataset 'Not A Name!'; choose one of: tiny_shakespeare"):
        data.spec("Not A Name!")


def test_checksums_agree_with_tfds_and_our_builders():
    import tensorflow_datasets as tfds

    for name in ("tiny_shakespeare", "imdb_reviews"):
        registered = {info.checksum for info in tfds.builder_cls(name).url_infos.values()}
        assert set(data.spec(name).sha256) == registered
    assert set(data.spec("aclimdb").sha256) == set(data.load_builder_module("aclimdb").KNOWN_ARCHIVES)
    assert data.spec("vader_sentiment/all").sha256 == (data.load_builder_module("vader_sentiment").SDIST_SHA256,)


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert data.default_data_dir() == tmp_path
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert data.default_data_dir().name == "tensorflow_datasets"


def test_offline_catalog_dataset_says_how_to_prepare(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_reachable", lambda host, port, timeout=0: False)
    with pytest.raises(DataError, match=r"cannot be reached .*--manual-dir DIR` with DIR holding aclImdb_v1\.tar\.gz "
                                        r"\(sha256 c40f74a1"):
        data.prepare("imdb_reviews", data_dir=tmp_path / "tfds")
    assert not (tmp_path / "tfds").exists()


def test_tiny_shakespeare_prepares_offline_from_the_copy_shipped_in_textgen(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was probed")

    monkeypatch.setattr(data, "_reachable", no_network)
    data.prepare("tiny_shakespeare", data_dir=tmp_path / "tfds")  # no --manual-dir, no network
    assert data.describe("tiny_shakespeare", data_dir=tmp_path / "tfds")["splits"]["train"]["characters"] == 1003854


def test_wrong_manual_file_is_refused_before_writing(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "aclImdb_v1.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DataError, match="imdb_reviews: .* has sha256 .*use the dataset name 'aclimdb'"):
        data.prepare("imdb_reviews", data_dir=tmp_path / "tfds", manual_dir=manual)
    with pytest.raises(DataError, match="truncated, corrupted"):
        data.prepare("aclimdb", data_dir=tmp_path / "tfds", manual_dir=manual)
    assert not (tmp_path / "tfds").exists()


def test_aclimdb_without_archive_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match="aclimdb is not prepared .*holding aclImdb_v1.tar.gz"):
        data.prepare("aclimdb", data_dir=tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        data.prepare("aclimdb", data_dir=tmp_path, manual_dir=tmp_path / "absent")


# --------------------------------------------------------------------------------------------
# Sentiment loading, describe and the CLI on the dummy IMDB archive


@pytest.fixture
def dummy_imdb(monkeypatch, tmp_path):
    """(data_dir, manual_dir) where aclimdb accepts the builder's 10-review dummy archive."""
    module = data.load_builder_module("aclimdb")
    archive = data.DATASETS_DIR / "aclimdb" / "dummy_data" / "aclImdb_v1.tar.gz"
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copy(archive, manual)
    raw = archive.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    monkeypatch.setitem(module.KNOWN_ARCHIVES, sha, len(raw))
    monkeypatch.setitem(data._SPECS, "aclimdb", dataclasses.replace(data.spec("aclimdb"), sha256=(sha,)))
    return tmp_path / "tfds", manual


def test_sentiment_examples_have_one_format(dummy_imdb):
    data_dir, manual = dummy_imdb
    examples = list(data.load_sentiment_corpus("aclimdb", "train", data_dir, manual).as_numpy_iterator())
    assert len(examples) == 4
    assert {tuple(sorted(ex)) for ex in examples} == {("label", "text", "valence")}
    assert sorted(int(ex["label"]) for ex in examples) == [0, 0, 1, 1]
    assert all(np.isnan(ex["valence"]) and ex["valence"].dtype == np.float32 for ex in examples)
    pos = [ex["text"].decode() for ex in examples if ex["label"] == 1]
    assert all(t.startswith("A pos train review") for t in pos)
    with pytest.raises(DataError, match="no split 'validation'; splits: train, test, unsupervised"):
        data.load_sentiment_corpus("aclimdb", "validation", data_dir)
    with pytest.raises(DataError, match="is a sentiment corpus"):
        data.load_text_corpus("aclimdb", "train", data_dir)


def test_cli_describe_json(dummy_imdb, capsys):
    data_dir, manual = dummy_imdb
    # describe prepares first; TFDS's progress messages must not reach stdout.
    assert cli.main(["data", "describe", "aclimdb", "--data-dir", str(data_dir), "--manual-dir", str(manual),
                     "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert json.loads(out[0]) == {"name": "aclimdb", "splits": {
        "train": {"examples": 4, "labels": {"neg": 2, "pos": 2}},
        "test": {"examples": 3, "labels": {"neg": 1, "pos": 2}},
        "unsupervised": {"examples": 3, "labels": {"neg": 0, "pos": 0, "unlabelled": 3}}}}
    assert cli.main(["data", "prepare", "aclimdb", "--data-dir", str(data_dir)]) == 0  # already prepared
    assert capsys.readouterr().out == f"prepared aclimdb in {data_dir}\n"


def test_cli_unknown_dataset_exits_2(capsys, tmp_path):
    assert cli.main(["data", "describe", "imdb", "--data-dir", str(tmp_path), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("textgen: error: unknown dataset 'imdb'; choose one of:") and "\n" not in err


def test_cli_describe_plain(dummy_imdb, capsys):
    data_dir, manual = dummy_imdb
    assert cli.main(["data", "describe", "aclimdb", "--data-dir", str(data_dir), "--manual-dir", str(manual)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ["aclimdb", "  train: examples 4, neg 2, pos 2", "  test: examples 3, neg 1, pos 2",
                     "  unsupervised: examples 3, neg 0, pos 0, unlabelled 3"]


def test_unwritable_data_dir_is_a_clear_error(dummy_imdb, tmp_path):
    _, manual = dummy_imdb
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="aclimdb: cannot prepare in .*a_file"):
        data.prepare("aclimdb", data_dir=blocker, manual_dir=manual)
    assert blocker.read_text() == "not a folder"
