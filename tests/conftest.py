"""Shared fixtures. Real data comes from ../shared/data (see its README).

Under CI=true a missing data file or browser is a failure, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
