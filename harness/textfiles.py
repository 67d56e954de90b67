"""A user's text files (spec, suite files, system prompt, data, ratings, baselines) read as UTF-8, or bad input."""

from __future__ import annotations

import codecs
from pathlib import Path

from harness.errors import HarnessInputError

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode(data: bytes, where: str, *, encoding: str = "utf-8") -> str:
    """`data` as text; bytes that are not UTF-8 raise HarnessInputError naming `where`, the byte and its line."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise HarnessInputError(not_utf8(data, where, exc)) from None


def not_utf8(data: bytes, where: str, exc: UnicodeDecodeError) -> str:
    """'FILE: not UTF-8 text (byte 0xff at position 0) ...; re-save it as UTF-8'."""
    pos = exc.start
    newline = b"\n"
    line = f" on line {data.count(newline, 0, pos) + 1}" if newline in data else ""
    if data.startswith(_UTF16_BOMS):
        fix = "it starts with a UTF-16 byte-order mark: save it as UTF-8 (in an editor: Save with Encoding, UTF-8)"
    elif data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        fix = "it starts with a UTF-32 byte-order mark: save it as UTF-8"
    else:
        fix = "save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 FILE`)"
    return f"{where}: not UTF-8 text (byte 0x{data[pos]:02x} at position {pos}){line}; {fix}"


def read_text(path: str | Path, *, encoding: str = "utf-8") -> str:
    """The text of a user's file (`utf-8-sig` also drops a leading byte-order mark)."""
    path = Path(path)
    return decode(path.read_bytes(), str(path), encoding=encoding)
