"""Writes the tiny `dummy_data/` archives of our builders (already in git; rerun to regenerate).

Usage: python datasets/make_dummy_data.py
aclimdb: train 2 pos + 2 neg + 3 unsup, test 2 pos + 1 neg. vader_sentiment: per domain 3 train,
1 validation, 1 test row with a non-zero valence (ids picked with the builder's own `split_of`),
plus one neutral row that the builder drops. Archives use mtime 0, so reruns give the same bytes.
"""
import gzip
import io
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)

def add(tar, name, data: bytes):
    info = tarfile.TarInfo(name); info.size = len(data); info.mtime = 0
    tar.addfile(info, io.BytesIO(data))

def targz(path_or_buf, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files:
            add(tar, name, data)
    return gzip.compress(buf.getvalue(), mtime=0)

imdb = [("aclImdb/README", b"dummy"), ("aclImdb/imdb.vocab", b"good\nbad\n")]
for split, label, n in [("train", "pos", 2), ("train", "neg", 2), ("train", "unsup", 3), ("test", "pos", 2), ("test", "neg", 1)]:
    for i in range(n):
        imdb.append((f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt",
                     f"  A {label} {split} review number {i}. <br />It was {'great' if label == 'pos' else 'awful'}.\n".encode()))
open("aclimdb/dummy_data/aclImdb_v1.tar.gz", "wb").write(targz(None, imdb))

# ids chosen so that each domain has rows in every split (see split_of); two neutral rows are dropped.
def gt(rows):
    return "\r\n".join(f"{i}\t{v}\t{t}" for i, v, t in rows).encode()

sys.path.insert(0, HERE)
from vader_sentiment.vader_sentiment_dataset_builder import split_of
domains = {"movies": "movieReviewSnippets_GroundTruth.txt", "tweets": "tweets_GroundTruth.txt",
           "amazon": "amazonReviewSnippets_GroundTruth.txt", "nyt": "nytEditorialSnippets_GroundTruth.txt"}
inner = []
plan = {}
for d, fname in domains.items():
    rows, want = [], {"train": 3, "validation": 1, "test": 1}
    i = 0
    while any(want.values()):
        i += 1
        s = split_of(d, str(i))
        if want[s]:
            want[s] -= 1
            v = [2.5, -1.25, 0.5, -3.0, 1.0][len(rows) % 5]
            rows.append((str(i), v, f"{d} row {i} &amp; more"))
    rows.append((str(i + 1), 0.0, f"{d} neutral row"))
    plan[d] = [(r[0], split_of(d, r[0]), r[1]) for r in rows]
    inner.append((f"hutto_ICWSM_2014/{fname}", gt(rows)))
inner.append(("hutto_ICWSM_2014/_README_.txt", b"dummy"))
sdist = [("vaderSentiment-3.3.2/PKG-INFO", b"Name: vaderSentiment\nVersion: 3.3.2\n"),
         ("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz", targz(None, inner))]
open("vader_sentiment/dummy_data/vaderSentiment-3.3.2.tar.gz", "wb").write(targz(None, sdist))
print(plan)  # id, split, valence per domain
