"""Your own text: `data prepare text`, `train charlm --text-file`, bad input refused with nothing
written, a model that generates in a fresh process, and a Chinese corpus of thousands of characters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textgen import cli, corpus, data
from textgen.data import SHIPPED_SOURCES

SHAKESPEARE = (SHIPPED_SOURCES / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8")
TINY = ["--units", "16", "--embedding-dim", "8", "--epochs", "1", "--batch-size", "8", "--seq-len", "32",
        "--steps-per-epoch", "6", "--seed", "1", "--quiet"]


def _run(args, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(code, err, *words):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("textgen")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]


def test_prepare_describe_again_and_refuse_other_content(tmp_path, capsys):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text(SHAKESPEARE[:3000], encoding="utf-8")
    (folder / "sub" / "two.txt").write_text(SHAKESPEARE[3000:5000], encoding="utf-8")
    (folder / "notes.md").write_text("not read: only *.txt in folders", encoding="utf-8")
    dd = tmp_path / "tfds"
    code, out, _ = _run(["data", "prepare", "text", "--name", "plays", folder, "--data-dir", dd], capsys)
    # one.txt does not end in a newline: one is put between the files (5,000 + 1 characters).
    joined = SHAKESPEARE[:3000] + "\n" + SHAKESPEARE[3000:5000]
    assert code == 0 and "prepared text corpus plays: 2 file(s), 5,001 characters" in out
    summary = data.describe("plays", data_dir=dd)
    assert summary["splits"]["train"]["characters"] == 4500 and summary["splits"]["test"]["characters"] == 251
    assert [Path(s["path"]).name for s in summary["sources"]] == ["one.txt", "two.txt"]
    assert data.read_text("plays", "validation", data_dir=dd) == joined[4500:4750]  # contiguous, in order
    code, out, _ = _run(["data", "describe", "plays", "--data-dir", dd], capsys)
    assert code == 0 and "sha256" in out
    code, out, _ = _run(["data", "prepare", "text", "--name", "plays", folder, "--data-dir", dd], capsys)
    assert code == 0 and out.startswith("already prepared")  # the same files: a no-op
    (folder / "one.txt").write_text(SHAKESPEARE[:2999] + "!", encoding="utf-8")
    code, _, err = _run(["data", "prepare", "text", "--name", "plays", folder, "--data-dir", dd], capsys)
    _one_line(code, err, "different corpus", "--overwrite")
    assert data.read_text("plays", "train", data_dir=dd) == joined[:4500]  # the old one is intact
    code, out, _ = _run(["data", "prepare", "text", "--name", "plays", folder, "--data-dir", dd, "--overwrite"],
                        capsys)
    assert code == 0 and data.read_text("plays", "train", data_dir=dd).startswith(SHAKESPEARE[:2999] + "!")


@pytest.mark.parametrize("case, words", [
    ("missing", ["does not exist"]),
    ("empty", ["empty"]),
    ("latin1", ["latin1.txt", "byte offset 9", "--encoding"]),
    ("binary", ["binary", "NUL"]),
    ("bad_name", ["not a valid corpus name"]),
    ("catalog_name", ["catalog dataset"]),
    ("empty_folder", ["holds no *.txt"]),
    ("bad_split", ["--split"]),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case, words):
    dd = tmp_path / "tfds"
    path, name, extra = tmp_path / "x.txt", "mine", []
    if case == "empty":
        path.write_text("", encoding="utf-8")
    elif case == "latin1":
        path = tmp_path / "latin1.txt"
        path.write_bytes(("Good day\n" + "\u00e9t\u00e9 " * 50).encode("latin-1"))
    elif case == "binary":
        path.write_bytes(b"GIF89a\x01\x00\x01\x00\x00\xff")
    elif case in ("bad_name", "catalog_name", "bad_split"):
        path.write_text(SHAKESPEARE[:3000], encoding="utf-8")
        name = {"bad_name": "My Corpus!", "catalog_name": "tiny_shakespeare", "bad_split": "mine"}[case]
        extra = ["--split", "50,50"] if case == "bad_split" else []
    elif case == "empty_folder":
        path = tmp_path / "folder"
        path.mkdir()
    code, _, err = _run(["data", "prepare", "text", "--name", name, path, "--data-dir", dd, *extra], capsys)
    _one_line(code, err, *words)
    assert not dd.exists()  # nothing written
    if case == "latin1":  # an explicit --encoding reads it
        assert _run(["data", "prepare", "text", "--name", name, path, "--data-dir", dd, "--encoding", "latin-1"],
                    capsys)[0] == 0


def test_train_text_file_too_short_says_how_long_and_writes_nothing(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text(SHAKESPEARE[:500], encoding="utf-8")
    dd, out = tmp_path / "tfds", tmp_path / "run"
    code, _, err = _run(["train", "charlm", "--text-file", short, "--data-dir", dd, "--out", out,
                         "--batch-size", "64", "--seq-len", "100"], capsys)
    need = corpus.min_characters(100, 64)
    _one_line(code, err, "500 characters", f"at least {need:,}")
    assert not dd.exists() and not out.exists()


@pytest.mark.slow
def test_text_file_model_generates_in_a_fresh_process_and_its_card_names_the_corpus(tmp_path, capsys):
    text = tmp_path / "My Lyrics.txt"
    text.write_text("\ufeff" + SHAKESPEARE[:20000], encoding="utf-8")  # a BOM, dropped
    dd, out = tmp_path / "tfds", tmp_path / "run"
    argv = ["train", "charlm", "--text-file", text, "--data-dir", dd, "--out", out, "--max-vocab", "30", *TINY]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    assert meta["dataset"]["name"] == "my_lyrics"
    source = meta["dataset"]["corpus"]["sources"][0]
    assert source["sha256"] == __import__("hashlib").sha256(text.read_bytes()).hexdigest()
    assert len(meta["vocabulary"]) == 30 and "\ufeff" not in meta["vocabulary"]  # --max-vocab, BOM dropped
    counts = meta["unigram_counts"]
    kept = sorted(counts, key=lambda c: (-counts[c], c))[:30]
    assert sorted(kept) == meta["vocabulary"]  # the 30 most frequent training characters
    done = subprocess.run([sys.executable, "-m", "textgen", "generate", str(out), "--prompt", "ROMEO:", "--length",
                           "40", "--seed", "3", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    sample = json.loads(done.stdout)["samples"][0]
    assert len(sample) == 40 and set(sample) <= set(meta["vocabulary"])
    command = "textgen " + __import__("shlex").join(str(a) for a in argv)
    assert cli.main(["card", str(out), "--command", command, "--sample-length", "40"]) == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "my_lyrics" in card and source["sha256"] in card
    # Resume after the run: the same command refuses (finished), --overwrite retrains into textgen's own folder.
    assert _run(argv, capsys)[0] == 2
    assert _run(argv + ["--overwrite"], capsys)[0] == 0


def chinese_text(distinct: int = 3200, length: int = 60000, seed: int = 0) -> str:
    """A generated Chinese text: `distinct` CJK characters (Zipf-like frequencies), lines and punctuation."""
    rng = np.random.default_rng(seed)
    chars = [chr(0x4E00 + i) for i in rng.permutation(20000)[:distinct]]
    weights = 1.0 / np.arange(1, distinct + 1) ** 0.7
    body = rng.choice(distinct, size=length, p=weights / weights.sum())
    body[:distinct] = np.arange(distinct)  # every character at least once
    out = []
    for i, c in enumerate(body):
        out.append(chars[c])
        if i % 7 == 6:
            out.append("，" if i % 14 == 6 else "。\n")
    return "".join(out)


@pytest.mark.slow
def test_a_chinese_corpus_of_thousands_of_characters_trains_generates_and_shows_inside(tmp_path, capsys):
    from textgen.artifacts import load_model_dir
    from textgen.introspect import trace
    from textgen.sampling import SamplingParams, load_sampler

    text = chinese_text()
    path = tmp_path / "中文.txt"
    path.write_text(text, encoding="utf-8")
    dd, out = tmp_path / "tfds", tmp_path / "zh"
    code, _, err = _run(["train", "charlm", "--text-file", path, "--dataset", "zh_generated", "--data-dir", dd,
                         "--out", out, *TINY], capsys)
    assert code == 0, err
    loaded = load_model_dir(out)
    vocabulary = loaded.metadata["vocabulary"]
    assert len(vocabulary) >= 3000
    sample = load_sampler(out).generate("春", SamplingParams(length=30, seed=1))[0]
    assert len(sample) == 30 and set(sample) <= set(vocabulary)
    assert sum("\u4e00" <= c <= "\u9fff" for c in sample) >= 10
    result = trace(loaded.model, "春江花月夜。")
    assert result.chars == list("春江花月夜。") and len(result.layers) == 1
