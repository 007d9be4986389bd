"""Shared fixtures. Real data comes from ../shared/data (see its README).

Under CI=true a missing data file or browser is a failure, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_bench(name: str):
    """Imports bench/NAME.py from this checkout (pytest may run without the repo root on sys.path)."""
    import importlib
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"bench.{name}")
SHARED_DATA = Path(os.environ.get("TEXTGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skips locally when `condition` is false; under CI=true fails instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder with the real corpora."""
    require(SHARED_DATA.is_dir(), f"real data folder {SHARED_DATA} is missing")
    return SHARED_DATA


# --------------------------------------------------------------------------------------------
# Data fixtures (textgen.data): source files and prepared TFDS data dirs, once per test run.


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `name`, made by `build(folder)` once per test run, shared by the pytest-xdist workers.

    Each worker has a base temp dir of its own (.../pytest-N/gwK); their parent is the run's. The first
    worker to take the lock builds the folder there and marks it done; the others wait on the lock, then read
    it. Without xdist the parent is pytest's own temp root, so the build stays per run as before. Preparing
    IMDB and VADER takes about a minute, once instead of once per worker.
    """
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            if folder.exists():  # a worker that failed half way: start over
                import shutil
                shutil.rmtree(folder)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"


@pytest.fixture(scope="session")
def vader_sdist_dir(shared_data, tmp_path_factory) -> Path:
    """A folder holding the vaderSentiment 3.3.2 sdist: shared data, $TEXTGEN_VADER_SDIST_DIR, else one pip download."""
    import subprocess
    import sys

    for candidate in (shared_data / "vader_sentiment", Path(os.environ.get("TEXTGEN_VADER_SDIST_DIR", "/nonexistent"))):
        if (candidate / VADER_SDIST).is_file():
            return candidate
    folder = tmp_path_factory.mktemp("vader_sdist")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                           "vaderSentiment==3.3.2", "-d", str(folder)], capture_output=True, text=True, timeout=300)
    require(done.returncode == 0 and (folder / VADER_SDIST).is_file(),
            f"cannot pip download the vaderSentiment 3.3.2 sdist: {done.stderr.strip()[-300:]}")
    return folder


@pytest.fixture(scope="session")
def shakespeare_data_dir(shared_data, tmp_path_factory) -> Path:
    """A TFDS data dir with the real tiny_shakespeare prepared offline (about 1 s)."""
    from textgen import data

    return built_once(tmp_path_factory, "tfds_shakespeare", lambda data_dir: data.prepare(
        "tiny_shakespeare", data_dir=data_dir, manual_dir=shared_data / "tiny_shakespeare"))


@pytest.fixture(scope="session")
def prepared_data_dir(shared_data, vader_sdist_dir, tmp_path_factory) -> Path:
    """A TFDS data dir with tiny_shakespeare, aclimdb (about 20 s) and the vader_sentiment domains and `all`."""
    from textgen import data

    def build(data_dir: Path) -> None:
        data.prepare("tiny_shakespeare", data_dir=data_dir, manual_dir=shared_data / "tiny_shakespeare")
        data.prepare("aclimdb", data_dir=data_dir, manual_dir=shared_data / "aclImdb")
        for name in data.DATASET_NAMES:  # the all_but_<domain> configs: only where a test needs one
            if name.startswith("vader_sentiment/") and "/all_but_" not in name:
                data.prepare(name, data_dir=data_dir, manual_dir=vader_sdist_dir)

    return built_once(tmp_path_factory, "tfds_prepared", build)


@pytest.fixture(scope="session")
def fortunes_zh_data_dir(tmp_path_factory) -> Path:
    """A TFDS data dir with the text corpus `fortunes_zh` (classical Chinese, from Debian's fortunes-zh
    package via `apt-get download`), prepared the way `make models` prepares it."""
    import shutil
    import sys

    require(shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None,
            "apt-get and dpkg-deb are needed to fetch Debian's fortunes-zh")
    sys.path.insert(0, str(REPO))
    from bench.corpora import fortunes_zh
    from textgen import corpus

    folder = tmp_path_factory.mktemp("fortunes_zh")
    try:
        made = fortunes_zh(folder / "fortunes_zh.txt")
    except Exception as err:  # noqa: BLE001  (no package list, no mirror: say so)
        require(False, f"cannot fetch fortunes-zh with apt-get download: {err}")
    data_dir = folder / "tfds"
    corpus.prepare_text_corpus("fortunes_zh", [made["path"]], data_dir=data_dir)
    return data_dir
