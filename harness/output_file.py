"""Writing an output file (report, baseline, JUnit, summary, rating sheet) whole or not at all: the text goes to a
temporary file beside the target, which replaces the target only once every byte is on disk."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from harness.errors import HarnessInputError

_CAUSES = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted",
           errno.ENOTDIR: "a part of the path is a file, not a folder", errno.EISDIR: "it is a folder"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _failure(path: Path, exc: OSError, *, kept: bool) -> HarnessInputError:
    """The bad-input error for an output file that could not be written: the file, the cause, what to do."""
    cause = _CAUSES.get(exc.errno or 0, exc.strerror or str(exc))
    before = ("the file that was there is unchanged" if kept else "no file was left there")
    advice = ("Free some space and rerun the command" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
              else "Choose a path you can write (-o PATH, --junit PATH, --summary PATH), or fix its permissions")
    return HarnessInputError(f"cannot write {path}: {cause}; nothing was written ({before}). {advice}.",
                             title="write failed")


def write_output(path: str | Path, data: str | bytes, *, encoding: str = "utf-8", errors: str = "strict",
                 append: bool = False) -> Path:
    """Write `data` to `path` atomically (parent folders made); `append` keeps what the file held before.

    A failure (full disk, read-only folder) is exit 2 naming `path`, and leaves no partial file. A target that is not
    a regular file (a pipe, /dev/stdout) is written to directly; a symlink's target is replaced, not the link.
    """
    path = Path(path)
    payload = data.encode(encoding, errors) if isinstance(data, str) else data
    target = path.resolve() if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _failure(path, exc, kept=target.exists()) from None
    existing = target.stat() if target.exists() else None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        try:
            with target.open("ab" if append else "wb") as f:
                f.write(payload)
        except OSError as exc:
            raise _failure(path, exc, kept=True) from None
        return path
    if append and existing is not None:
        payload = target.read_bytes() + payload
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise _failure(path, exc, kept=existing is not None) from None
    return path
