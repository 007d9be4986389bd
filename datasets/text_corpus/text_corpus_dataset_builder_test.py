"""text_corpus: the builder on dummy_data/ (two files, a BOM, a missing final newline, CJK), with no network."""

from pathlib import Path

import tensorflow_datasets as tfds

from . import text_corpus_dataset_builder as builder_module

DUMMY = Path(builder_module.__file__).parent / "dummy_data"


def _joined() -> str:
    first = (DUMMY / "a.txt").read_text(encoding="utf-8-sig")  # the BOM is dropped
    second = (DUMMY / "sub" / "b.txt").read_text(encoding="utf-8")
    return first + second  # a.txt ends in "\n": no newline is added between the files


def _sources() -> list[dict]:
    from textgen import corpus

    return corpus.scan(corpus.find_files([DUMMY]))


def test_splits_are_contiguous_slices_in_order(tmp_path):
    text = _joined()
    bounds = (91, 121, len(text))
    config = builder_module.TextCorpusConfig(name="dummy", sources=_sources(), bounds=bounds)
    b = builder_module.Builder(config=config, data_dir=str(tmp_path))
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    got = {}
    for split in ("train", "validation", "test"):
        got[split] = "".join(ex["text"].decode("utf-8") for ex in tfds.as_numpy(b.as_dataset(split=split)))
    assert got == {"train": text[:91], "validation": text[91:121], "test": text[121:]}
    assert b.info.metadata["splits"] == {"train": [0, 91], "validation": [91, 121], "test": [121, len(text)]}
    assert [s["path"].endswith(n) for s, n in zip(b.info.metadata["sources"], ("a.txt", "b.txt"))] == [True, True]
    reread = tfds.builder_from_directory(str(tmp_path / "text_corpus" / "dummy" / "1.0.0"))
    assert reread.info.metadata["characters"] == len(text)  # readable from the folder alone


def test_pieces_are_cut_at_the_chunk_size_without_losing_a_character():
    text = _joined()
    sources = _sources()
    pieces = list(builder_module.split_chunks(sources, 5, len(text) - 3, chunk=16))
    assert "".join(pieces) == text[5:-3]
    assert all(len(p) == 16 for p in pieces[:-1]) and 0 < len(pieces[-1]) <= 16
