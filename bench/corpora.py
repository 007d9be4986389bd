"""Corpora for measurements and demonstrations of the own-text path, made reproducibly.

    python -m bench.corpora generated OUT.txt --mb 200     # a 200 MB text for the preparation benchmark
    python -m bench.corpora fortunes-zh OUT.txt           # classical Chinese poetry and sayings

`generated`: lines of words drawn (seeded) from the tiny_shakespeare text shipped in textgen, with
Zipf-like word frequencies: a corpus of any size whose characters look like real text, built in
blocks (bounded memory). Prints one JSON line with its size.

`fortunes-zh`: the Debian package `fortunes-zh` (fetched with `apt-get download` when no .deb is
given) ships the Tang 300 poems (`tang300`), 100 Song lyrics (`song100`) and classical sayings
(`chinese`: the Daodejing, the Caigentan, proverbs, poems). The texts are centuries old (public
domain; the package's own files are GPL-3+). Entries holding Latin letters, digits or box drawing
(the modern technical notes in `chinese`) are left out and the terminal colour codes removed:
about 318,000 characters, 5,900 distinct.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FORTUNE_FILES = ("tang300", "song100", "chinese")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MODERN = re.compile(r"[A-Za-z0-9\u2500-\u257f\xa0]")  # Latin, digits, box drawing: not classical text


def fortunes_zh(out: Path, deb: Path | None = None) -> dict:
    """Writes the classical Chinese corpus to `out`; returns {"path", "characters", "distinct", "entries"}."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if deb is None:
            subprocess.run(["apt-get", "download", "fortunes-zh"], cwd=tmp, check=True, capture_output=True)
            deb = next(tmp.glob("fortunes-zh_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True)
        folder = tmp / "x" / "usr" / "share" / "games" / "fortunes"
        entries = []
        for name in FORTUNE_FILES:
            for entry in (folder / name).read_text(encoding="utf-8").split("\n%\n"):
                entry = _ANSI.sub("", entry).strip("\n%")
                if entry.strip() and not _MODERN.search(entry):
                    entries.append(entry)
    text = "\n\n".join(entries) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return {"path": str(out), "characters": len(text), "distinct": len(set(text)), "entries": len(entries)}


def generated(out: Path, mb: float, seed: int = 0, block_words: int = 1_000_000) -> dict:
    """Writes about `mb` megabytes of word-salad text built from tiny_shakespeare's words."""
    from textgen.data import SHIPPED_SOURCES

    words = sorted(set((SHIPPED_SOURCES / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8").split()))
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(words) + 1)  # Zipf-like
    weights /= weights.sum()
    order = rng.permutation(len(words))
    vocab = np.array(words, dtype=object)[order]
    target = int(mb * 1_000_000)
    written = 0
    with open(out, "w", encoding="utf-8") as f:
        while written < target:
            picks = vocab[rng.choice(len(vocab), size=block_words, p=weights)]
            ends = rng.random(block_words) < 1 / 9  # about 9 words a line
            block = "".join(w + ("\n" if e else " ") for w, e in zip(picks, ends))
            block = block[: target - written]
            f.write(block)
            written += len(block.encode("utf-8"))
    return {"path": str(out), "bytes": out.stat().st_size}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpora", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("generated", help="word-salad text of a given size from tiny_shakespeare's words")
    p.add_argument("out", type=Path)
    p.add_argument("--mb", type=float, default=200.0, help="size in megabytes (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p = sub.add_parser("fortunes-zh", help="classical Chinese poetry and sayings from Debian's fortunes-zh")
    p.add_argument("out", type=Path)
    p.add_argument("--deb", type=Path, default=None, help="a fortunes-zh .deb (default: apt-get download)")
    args = parser.parse_args(argv)
    result = generated(args.out, args.mb, args.seed) if args.kind == "generated" else fortunes_zh(args.out, args.deb)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
