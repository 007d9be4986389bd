"""The dataset catalog: user-facing names -> `DatasetSpec`, the TFDS data directory, our builders' modules.

The lowest of the data modules: `textgen.corpus` (a user's own corpora) and `textgen.data`
(preparation, tf.data) both read it, so the dependency runs one way. Names the user can give:

- `tiny_shakespeare`: the TFDS catalog dataset (one example per split: the whole text).
- `imdb_reviews`: the TFDS catalog dataset (needs the original archive or the network).
- `aclimdb`: our builder in `datasets/aclimdb/` for a manually supplied IMDB archive.
- `vader_sentiment/{movies,tweets,amazon,nyt,all,all_but_<domain>}`: our builder in `datasets/vader_sentiment/`.

No TensorFlow at import time: `load_builder_module` imports TFDS when it first runs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from textgen.errors import DataError

# Our builders live outside the package in the `tfds new` layout (see datasets/*/README.md).
DATASETS_DIR = Path(__file__).resolve().parents[1] / "datasets"
IMDB_ORIGINAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"


@dataclass(frozen=True)
class DatasetSpec:
    """What the catalog knows about one user-facing dataset name."""

    name: str  # user-facing name, e.g. "vader_sentiment/tweets"
    builder: str  # TFDS builder name
    config: str | None  # TFDS builder config, or None for the default
    kind: str  # "text" (character corpus) or "sentiment" (text, label[, valence])
    local: bool  # True: our builder in datasets/<builder>/; False: TFDS catalog
    manual_file: str  # file name the builder looks for in manual_dir
    url: str  # where the source file comes from (for messages)
    sha256: tuple[str, ...]  # accepted sha256 values of `manual_file`
    host: tuple[str, int] | None  # (host, port) probed before a network download; None: never downloads
    user: bool = False  # a user's own text corpus (`textgen data prepare text`, datasets/text_corpus/)
    # The collections its rows come from: two datasets that share none have no text in common (a
    # model trained on one and evaluated on the other is measured on a domain it never saw). () = (name,).
    parts: tuple[str, ...] = ()

    def sources(self) -> frozenset[str]:
        return frozenset(self.parts or (self.name,))


_SPECS: dict[str, DatasetSpec] = {}


def _add(spec: DatasetSpec) -> None:
    _SPECS[spec.name] = spec


_add(DatasetSpec(
    name="tiny_shakespeare", builder="tiny_shakespeare", config=None, kind="text", local=False,
    manual_file="input.txt",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    # TFDS's registered checksum (tensorflow_datasets/datasets/tiny_shakespeare/checksums.tsv).
    sha256=("86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",),
    host=("raw.githubusercontent.com", 443),
))
_add(DatasetSpec(
    name="imdb_reviews", builder="imdb_reviews", config=None, kind="sentiment", local=False,
    manual_file="aclImdb_v1.tar.gz", url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256=(IMDB_ORIGINAL_SHA256,), host=("ai.stanford.edu", 80),
))
_add(DatasetSpec(
    name="aclimdb", builder="aclimdb", config=None, kind="sentiment", local=True,
    manual_file="aclImdb_v1.tar.gz", url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    # The original archive and the faithful rebuild (see datasets/aclimdb/README.md).
    sha256=(IMDB_ORIGINAL_SHA256, "91ab3079f70de8a9697b762bba75c97e4c82d1f1b49e151618e666091fb6a7fc"),
    host=None,  # never downloads: the archive must be in manual_dir
))
VADER_DOMAINS = ("movies", "tweets", "amazon", "nyt")
_VADER_PARTS = {**{d: (d,) for d in VADER_DOMAINS}, "all": VADER_DOMAINS,
                **{f"all_but_{d}": tuple(o for o in VADER_DOMAINS if o != d) for d in VADER_DOMAINS}}
for _domain, _parts in _VADER_PARTS.items():
    _add(DatasetSpec(
        name=f"vader_sentiment/{_domain}", builder="vader_sentiment", config=_domain, kind="sentiment", local=True,
        parts=tuple(f"vader_sentiment/{p}" for p in _parts),
        manual_file="vaderSentiment-3.3.2.tar.gz", url="https://pypi.org/project/vaderSentiment/3.3.2/ (sdist)",
        sha256=("5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",),
        host=("pypi.org", 443),  # the builder fetches the sdist with pip when it is not in manual_dir
    ))

DATASET_NAMES: tuple[str, ...] = tuple(_SPECS)


def disjoint(a: str, b: str) -> bool:
    """True when catalog datasets `a` and `b` share no source collection (unknown names: only when they differ)."""
    sa = _SPECS[a].sources() if a in _SPECS else frozenset((a,))
    sb = _SPECS[b].sources() if b in _SPECS else frozenset((b,))
    return not (sa & sb)
CATALOG_NAMES = DATASET_NAMES  # the names a user's corpus may not take


def default_data_dir() -> Path:
    """`$TFDS_DATA_DIR` or `~/tensorflow_datasets` (TFDS's default)."""
    return Path(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def _data_dir(data_dir) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def load_builder_module(builder_name: str):
    """Imports `datasets/<name>/<name>_dataset_builder.py` as module `<name>.<name>_dataset_builder`.

    TFDS finds a builder's README.md/CITATIONS.bib through its package, so the folder is imported as
    package `<name>` (by file path: `datasets/` is not on sys.path), the way its builder test
    imports it. Executed inside `skip_registration()`: we instantiate `Builder` directly, and a later
    import of the same file by another route can then never collide in TFDS's registry.
    """
    import tensorflow_datasets as tfds

    module_name = f"{builder_name}.{builder_name}_dataset_builder"
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = DATASETS_DIR / builder_name
    path = folder / f"{builder_name}_dataset_builder.py"
    if not path.is_file():
        raise DataError(f"builder file {path} is missing: reinstall textgen from its repository (editable)")
    if builder_name not in sys.modules:
        package_spec = importlib.util.spec_from_file_location(
            builder_name, folder / "__init__.py", submodule_search_locations=[os.fspath(folder)])
        package = importlib.util.module_from_spec(package_spec)
        sys.modules[builder_name] = package
        package_spec.loader.exec_module(package)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        with tfds.core.registered.skip_registration():
            module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
