"""The one way sessionbase opens a file it reads: regular files only, never blocking, bounded.

Everything read from the Codex homes (rollouts, ``session_index.jsonl``, SKILL.md, plugin
manifests), imported captures and the config file goes through ``open_regular``. A FIFO, a
device, a socket or a directory — or a symlink to one — is refused with a reason instead of
blocking the reader (opening a FIFO waits for a writer) or feeding it endless bytes
(``/dev/zero``). The type is checked on the opened descriptor, not on the path beforehand,
so a file swapped for something else between a check and the open cannot get through.

Reads of whole files are bounded too: ``read_head`` returns at most ``limit`` bytes and
``read_limited`` refuses a larger file; rollouts are streamed by their readers.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

READ_BUFFER = 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class NotRegularFile(OSError):
    """The path is (or points to) something other than a regular file."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind})", str(path))

    def __str__(self) -> str:
        return str(self.strerror)


class FileTooLarge(OSError):
    """A file read whole is bigger than its limit."""

    def __init__(self, path: str | Path, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {_size(limit)}", str(path))

    def __str__(self) -> str:
        return str(self.strerror)


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO", "a character device", ...)."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a file"


def open_regular(path: str | Path, *, buffering: int = READ_BUFFER) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (symlinks are followed to check what
    they point to). Never blocks. Raises ``NotRegularFile`` or any other ``OSError``."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # what opening a socket says: name it instead
            _refuse_special(path)
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):  # as the built-in open() says it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, kind_of(mode))
        # Regular files ignore O_NONBLOCK on Linux, but not everywhere: clear it.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return open(fd, "rb", buffering=buffering, closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _refuse_special(path: str | Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, kind_of(mode))


def read_head(path: str | Path, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from the start of a regular file, and whether there was more."""
    with open_regular(path, buffering=0) as fh:
        data = _read_up_to(fh, limit + 1)
    return data[:limit], len(data) > limit


def read_limited(path: str | Path, limit: int) -> bytes:
    """A whole regular file of at most ``limit`` bytes; raises ``FileTooLarge`` beyond that."""
    data, more = read_head(path, limit)
    if more:
        raise FileTooLarge(path, limit)
    return data


def _read_up_to(fh: BinaryIO, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        part = fh.read(min(n, READ_BUFFER))
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n:,} bytes"
