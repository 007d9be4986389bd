"""Reading a user's text files: strict decoding, a byte offset for every refusal, bounded memory.

Every command that reads text a user gives (`predict --file`, `data prepare text`, `train charlm
--text-file`) goes through here, so they all say the same thing about the same bad file:

- a file that does not decode in the chosen encoding (UTF-8 by default) is refused with the file
  and the byte offset of the first bad byte, and a hint to pass `--encoding`;
- a file holding NUL characters is refused as binary (text never has them);
- a UTF-8 byte-order mark at the start is dropped;
- files are read in chunks (`iter_text`), so a 200 MB corpus never becomes one Python string.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Iterator

from textgen.errors import TextgenError

CHUNK_BYTES = 1 << 20  # 1 MiB of bytes per decoded chunk
BOM = "\ufeff"


class TextFileError(TextgenError, ValueError):
    """A text file cannot be read: missing, unreadable, binary or not in the given encoding."""


def check_encoding(encoding) -> str:
    """The codec's canonical name, or TextFileError for an unknown encoding."""
    if not isinstance(encoding, str):
        raise TextFileError(f"--encoding must be a codec name such as utf-8 or latin-1; got {encoding!r}")
    try:
        return codecs.lookup(encoding).name
    except LookupError as err:
        raise TextFileError(f"unknown --encoding {encoding!r}; use a Python codec name such as utf-8, "
                            "latin-1, cp1252, gb18030 or utf-16") from err


def _hint(encoding: str) -> str:
    return "; pass --encoding NAME to read another encoding" if encoding == "utf-8" else ""


def iter_text(path: str | os.PathLike, encoding: str = "utf-8", chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
    """Yields the decoded text of `path` in pieces of about `chunk_bytes` bytes each.

    Raises:
        TextFileError: the path is missing, a folder or unreadable; a byte sequence does not decode
            (the message names the byte offset); or the text holds a NUL character (a binary file).
    """
    encoding = check_encoding(encoding)
    path = Path(path)
    if not path.exists():
        raise TextFileError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise TextFileError(f"cannot read {path}: it is a folder, not a text file")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0  # bytes consumed before the current chunk
    byte_nul = not encoding.startswith(("utf-16", "utf-32"))  # where a 0 byte can only be a NUL character
    first = True
    try:
        f = open(path, "rb")
    except OSError as err:
        raise TextFileError(f"cannot read {path}: {err.strerror or err}") from err
    with f:
        while True:
            try:
                data = f.read(chunk_bytes)
            except OSError as err:
                raise TextFileError(f"cannot read {path}: {err.strerror or err}") from err
            final = not data
            if byte_nul:  # checked first: a binary file is "binary", not "bad byte 0x89"
                at = data.find(b"\x00")
                if at >= 0:
                    raise TextFileError(f"{path} looks like a binary file, not text (a NUL byte at byte offset "
                                        f"{offset + at})")
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as err:
                # err.start indexes the decoder's buffer: pending bytes of the last chunk + this one.
                pending = len(err.object) - len(data)
                at = offset - pending + err.start
                bad = err.object[err.start : err.start + 1].hex()
                raise TextFileError(f"{path} is not {encoding} text: cannot decode byte 0x{bad} at byte offset {at}"
                                    f"{_hint(encoding)}") from err
            if first and text:
                if encoding == "utf-8" and text.startswith(BOM):
                    text = text[1:]
                first = False
            nul = text.find("\x00")
            if nul >= 0:
                # The byte offset of the NUL: this chunk's offset plus the encoded text before it
                # (exact for the stateless encodings; it is only reported, never used to seek).
                at = offset + len(text[:nul].encode(encoding, errors="replace"))
                raise TextFileError(f"{path} looks like a binary file, not text (a NUL byte near byte offset {at})")
            offset += len(data)
            if text:
                yield text
            if final:
                return


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The whole text of `path` (see `iter_text` for what is refused). For files that fit in memory."""
    return "".join(iter_text(path, encoding))
