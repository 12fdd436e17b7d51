"""The token-signing key: one file in the data dir, mode 0600, replaced whole on rotation.

The file holds ``{"kid", "secret", "created_at"}`` (the secret base64url, 32 random bytes).
It is created on first need with ``O_EXCL`` and mode 0600 from the start, and rotation writes a
new file beside it and renames it over the old one, so a reader never sees half a key. A key
file that others can read is refused: a token signed with it would prove nothing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from sessionbase.errors import ConfigError

KEY_FILE = "signing-key.json"
KEY_BYTES = 32


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes
    created_at: int  # ms


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def _new_key() -> SigningKey:
    return SigningKey(secrets.token_hex(6), secrets.token_bytes(KEY_BYTES), int(time.time() * 1000))


def _encode(key: SigningKey) -> bytes:
    secret = base64.urlsafe_b64encode(key.secret).decode().rstrip("=")
    return orjson.dumps({"kid": key.kid, "secret": secret, "created_at": key.created_at})


def _write_new(path: Path, key: SigningKey) -> None:
    """Write ``key`` to a file that must not exist yet, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, _encode(key))
        os.fsync(fd)
    finally:
        os.close(fd)


def load_key(path: Path) -> SigningKey:
    """The key in ``path``; ConfigError when it is missing, unreadable, damaged, or readable
    by anyone but its owner."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ConfigError(f"no signing key at {path}: run `sessionbase pair` first") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the signing key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"the signing key {path} can be read by other users (mode"
                f" {stat.S_IMODE(info.st_mode):o}): run `chmod 600 {path}`, and rotate it"
                " (`sessionbase devices rotate-key`) if anyone may have copied it"
            )
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        data = orjson.loads(raw)
        padded = data["secret"] + "=" * (-len(data["secret"]) % 4)
        key = SigningKey(
            str(data["kid"]), base64.urlsafe_b64decode(padded), int(data["created_at"])
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ConfigError(
            f"the signing key {path} is damaged: rotate it (`sessionbase devices rotate-key`)"
        ) from None
    if len(key.secret) < KEY_BYTES:
        raise ConfigError(f"the signing key {path} is too short: rotate it")
    return key


def ensure_key(data_dir: Path) -> SigningKey:
    """The data dir's key, created (mode 0600) if there is none yet."""
    path = key_path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        _write_new(path, _new_key())
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create the signing key {path}: {exc.strerror}") from None
    return load_key(path)


def rotate_key(data_dir: Path) -> SigningKey:
    """Replace the data dir's key with a new one (atomically) and return it."""
    path = key_path(data_dir)
    fresh = _new_key()
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        _write_new(staged, fresh)
        os.replace(staged, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            staged.unlink()
        raise ConfigError(f"cannot write the signing key {path}: {exc.strerror}") from None
    return fresh


class KeyFile:
    """The current key of one file, re-read when the file is replaced (a rotation by another
    process): ``current()`` costs one ``stat`` when asked at most every ``recheck`` seconds."""

    def __init__(self, path: Path, recheck: float = 0.5) -> None:
        self.path = path
        self.recheck = recheck
        self._key: SigningKey | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    def current(self) -> SigningKey:
        now = time.monotonic()
        if self._key is None or now - self._checked >= self.recheck:
            self.reload()
            self._checked = now
        assert self._key is not None
        return self._key

    def reload(self) -> SigningKey:
        """Read the file again if it changed (ConfigError if it cannot be used)."""
        try:
            info = os.stat(self.path)
            stamp = (info.st_ino, info.st_mtime_ns)
        except OSError:
            stamp = None
        if self._key is None or stamp != self._stamp:
            self._key = load_key(self.path)
            self._stamp = stamp
        return self._key
