"""One way to write a file so that a crash never leaves half of it: write a temporary file in the
same folder, then `os.replace` it over the target (atomic on POSIX and Windows within one file
system). Every file textgen writes goes through `replacing`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = "", absent: bool = False) -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it over `path` when the block ends, deletes it
    when the block raises (the old `path`, if any, stays untouched).

    Args:
        suffix: the temporary name's ending, for writers that pick a format by it (".keras", ".png").
        absent: remove the (empty) temporary file before yielding, for writers that refuse to open
            an existing file (h5py in some modes).

    Example:
        >>> with replacing("model.keras", suffix=".keras") as tmp:
        ...     model.save(tmp)
    """
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    # mkstemp makes the file readable by its owner only; the file it replaces or creates gets the
    # permissions any new file would (0666 less the umask), so a model written by one user reads for others.
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    if absent:
        os.unlink(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
