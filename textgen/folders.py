"""Folders that textgen writes: where an output may go, which folders it may replace, and how a
finished folder is put in place.

Three rules keep a user's data safe:

1. An output never overlaps an input: `--out` equal to, inside or containing a path the command
   reads (after resolving symbolic links) is refused.
2. `--overwrite` replaces only a folder that textgen itself wrote: one with textgen's marker file
   (`.textgen.json`, written into every export, import and run directory) and nothing in it that
   textgen did not write. A folder of the user's is never replaced, and a file the user put inside
   one of textgen's folders is never deleted: its presence refuses the overwrite.
3. Publishing is crash-safe. The new folder is built completely under a hidden staging name beside
   the target, then swapped in. On Linux the swap is one `renameat2(RENAME_EXCHANGE)`, so at every
   instant the target is either the old or the new folder; elsewhere the old folder is renamed aside
   just before the new one is renamed in. A `kill -9` leaves at most a hidden leftover, which the next
   command writing to that target removes, or (when the kill fell between the two renames) restores
   as the target, and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from textgen.errors import TextgenError

MARKER = ".textgen.json"
# Names of leftovers: `.NAME.textgen-tmp-PID-RANDOM` (a folder being built, or after the swap the old
# folder being deleted) and `.NAME.textgen-old-PID` (the old folder renamed aside, non-Linux swap).
_TMP, _OLD = "textgen-tmp", "textgen-old"
# Files textgen's own atomic writes leave for an instant (artifacts.save_keras_atomic, config.atomic_write_text).
_ATOMIC_TEMP_PREFIX = ".tmp-"


class FolderError(TextgenError, ValueError):
    """An output path cannot be used: it overlaps an input, is not writable, or is a folder textgen
    may not replace."""


# --------------------------------------------------------------------------------------------
# The marker


def write_marker(folder: str | os.PathLike, kind: str, entries: Iterable[str] | None = None) -> None:
    """Marks `folder` as written by textgen.

    Args:
        folder: an existing folder.
        kind: what wrote it ("export", "model", "run").
        entries: the names textgen writes at its top level; None = what is in it now.
    """
    from textgen import __version__

    folder = Path(folder)
    names = sorted(set(entries if entries is not None else (p.name for p in folder.iterdir())) - {MARKER})
    payload = {"written_by": "textgen", "kind": kind, "textgen_version": __version__, "entries": names,
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    from textgen.config import atomic_write_text

    atomic_write_text(folder / MARKER, json.dumps(payload, indent=2) + "\n")


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The marker of `folder`, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("written_by") == "textgen" else None


def foreign_entries(folder: str | os.PathLike, known: Iterable[str] = ()) -> list[str] | None:
    """Names in `folder` that textgen did not write, or None when `folder` is not textgen's.

    A folder is textgen's when it has the marker; a folder written before the marker existed counts
    when it holds a model (`model.keras` + `config.json`) and every name in it is in `known`.
    """
    folder = Path(folder)
    names = {p.name for p in folder.iterdir()}
    ours = {name for name in names if name.startswith(_ATOMIC_TEMP_PREFIX)} | {MARKER}
    marker = read_marker(folder)
    if marker is not None:
        listed = marker.get("entries")
        allowed = set(listed if isinstance(listed, list) else []) | set(known) | ours
        return sorted(names - allowed)
    if {"model.keras", "config.json"} <= names and names <= set(known) | ours:
        return []
    return None


def check_replaceable(folder: Path, known: Iterable[str] = (), flag: str = "--out") -> None:
    """Raises FolderError unless `folder` is absent, empty, or a folder textgen wrote with nothing else in it."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    foreign = foreign_entries(folder, known)
    if foreign is None:
        raise FolderError(f"{flag} {folder} is a folder textgen did not write (it has no {MARKER}); "
                          "--overwrite replaces only textgen's own folders: choose another or empty it yourself")
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FolderError(f"{flag} {folder} holds files textgen did not write ({shown}); --overwrite would "
                          "delete them: move them out first or choose another folder")


# --------------------------------------------------------------------------------------------
# Where an output may go


def _real(path: str | os.PathLike) -> Path:
    """The absolute path with every symbolic link resolved (missing tail parts kept as given)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def check_out_path(out: str | os.PathLike, inputs: Sequence[str | os.PathLike | None] = (),
                   flag: str = "--out") -> Path:
    """Checks that `out` can be written and overlaps no input; returns its resolved path.

    Raises FolderError when `out` is an input, lies inside one or contains one; when a part of its
    path is a file; or when its first existing parent is not a writable folder.
    """
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise FolderError(f"{flag} must be a folder path; got {out!r}")
    real = _real(out)
    for given in inputs:
        if given is None or given == "":
            continue
        source = _real(given)
        if real == source:
            raise FolderError(f"{flag} {out} is the input {given} itself; choose another folder")
        if source in real.parents:
            raise FolderError(f"{flag} {out} lies inside the input {given}; choose a folder outside it")
        if real in source.parents:
            raise FolderError(f"{flag} {out} contains the input {given}; writing there could replace it: "
                              "choose a folder that does not contain it")
    if real.exists() and not real.is_dir():
        raise FolderError(f"{flag} {out} exists and is a file, not a folder")
    parent = real.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise FolderError(f"{flag} {out} lies under {parent}, which is a file, not a folder")
    try:  # the real test of writability (root passes os.access checks; /proc and /sys refuse anyway)
        os.rmdir(tempfile.mkdtemp(prefix=".textgen-probe-", dir=parent))
    except OSError as err:
        raise FolderError(f"{flag} {out}: cannot write in {parent}: {err.strerror or err}") from err
    return real


def check_out(out: str | os.PathLike, inputs: Sequence[str | os.PathLike | None] = (), *, overwrite: bool,
              known: Iterable[str] = (), flag: str = "--out", error: type[TextgenError] = FolderError) -> Path:
    """The check every command that writes a folder makes first; returns the resolved `out`.

    `check_out_path`; then leftovers of a killed command at `out` are recovered (`recover`); then a
    non-empty `out` needs `overwrite` and must be a folder textgen wrote (`check_replaceable`).
    A refusal is raised as `error` (a FolderError by default; commands raise their own kind).
    """
    try:
        real = check_out_path(out, inputs, flag)
        recover(real)
        if real.is_dir() and any(real.iterdir()):
            if not overwrite:
                raise FolderError(f"{flag} {out} is not empty; choose another folder or pass --overwrite")
            check_replaceable(real, known, flag)
    except FolderError as err:
        if error is FolderError:
            raise
        raise error(str(err)) from err
    return real


def make_folder(path: Path, flag: str = "--out") -> None:
    """`mkdir -p` whose failures (a file in the way, /proc, no permission) are one-line FolderErrors."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FolderError(f"cannot create {flag} {path}: {err.strerror or err}") from err


# --------------------------------------------------------------------------------------------
# Publishing a finished folder


def _renameat2_exchange() -> Callable[[str, str], None] | None:
    """An atomic swap of two paths (Linux `renameat2(RENAME_EXCHANGE)`), or None where unavailable."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a: str, b: str) -> None:
        if func(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), a)

    return exchange


_EXCHANGE = _renameat2_exchange()


def staging_folder(out: Path) -> Path:
    """A new empty hidden folder beside `out` to build the output in (same file system: renames are atomic)."""
    from textgen.atomic import current_umask

    make_folder(out.parent)
    try:
        staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.{_TMP}-{os.getpid()}-", dir=out.parent))
    except OSError as err:
        raise FolderError(f"cannot write in {out.parent}: {err.strerror or err}") from err
    staged.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would stay on the published folder
    return staged


def publish(staged: Path, out: Path) -> None:
    """Puts the finished folder `staged` at `out`, replacing what is there; `out` is never missing
    while an old folder was there (see the module docstring)."""
    if not out.exists():
        os.rename(staged, out)
        return
    if _EXCHANGE is not None:
        try:
            _EXCHANGE(str(staged), str(out))  # staged now holds the old folder
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOSYS, errno.EXDEV):  # file system without the flag
                raise
        else:
            shutil.rmtree(staged, ignore_errors=True)
            return
    old = out.with_name(f".{out.name}.{_OLD}-{os.getpid()}")
    os.rename(out, old)
    os.rename(staged, out)
    shutil.rmtree(old, ignore_errors=True)


def build_and_publish(out: Path, build: Callable[[Path], None], kind: str, entries: Iterable[str] | None = None) -> None:
    """Builds a folder with `build(staged)` under a staging name beside `out`, marks it as textgen's
    (`kind`, the `entries` it writes) once it is complete, and swaps it in at `out`; on any failure
    the staging folder is removed and `out` is as it was."""
    staged = staging_folder(out)
    try:
        build(staged)
        write_marker(staged, kind, entries)  # last: a folder with the marker is complete
        publish(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def pid_alive(pid: int | None) -> bool:
    """Whether process `pid` is running (this process counts; a zombie, exited but not reaped, does not)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _leftovers(out: Path) -> list[tuple[Path, str, int]]:
    """(path, "tmp" | "old", pid) of the hidden leftovers of `out` in its parent."""
    found = []
    if not out.parent.is_dir():
        return found
    for kind, tag in (("tmp", _TMP), ("old", _OLD)):
        prefix = f".{out.name}.{tag}-"
        for path in out.parent.glob(f".{glob_escape(out.name)}.{tag}-*"):
            pid_text = path.name[len(prefix):].split("-")[0]
            if pid_text.isdigit():
                found.append((path, kind, int(pid_text)))
    return found


def glob_escape(name: str) -> str:
    """`name` with the glob metacharacters `*?[` taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def recover(out: Path, say: Callable[[str], None] | None = None) -> list[str]:
    """Cleans up what a killed command left beside `out`; returns what it did (one line each).

    A leftover of a process that is still running is left alone (it may be publishing now).
    """
    done = []
    for path, kind, pid in sorted(_leftovers(out), key=lambda item: item[1] != "old"):
        if pid_alive(pid):
            continue
        if kind == "old" and not out.exists():
            os.rename(path, out)
            done.append(f"restored {out} from {path.name}, left by an interrupted command")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}, left beside {out.name} by an interrupted command")
    for line in done:
        (say or (lambda s: print(f"textgen: {s}", file=sys.stderr)))(line)
    return done
