"""Device ids, device secrets and pairing codes: how they are made, written and hashed.

A device secret is ``sbd.<device id>.<43 random characters>`` (256 bits): the id finds the
device, the whole string is compared by its SHA-256 (a secret this long needs no slow hash).
A pairing code is 8 characters of Crockford's base32 (40 bits), written ``ABCD-EFGH``; what
a person types is forgiven case, dashes, spaces and the look-alikes O/0, I/L/1. It is stored as
an HMAC under the signing key, so the database alone does not reveal a live code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sessionbase.auth.keys import SigningKey
from sessionbase.errors import AuthError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
CODE_LENGTH = 8
CODE_SPACE = len(ALPHABET) ** CODE_LENGTH  # 2**40
SECRET_PREFIX = "sbd"
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def new_device_id() -> str:
    return secrets.token_hex(6)


def new_device_secret(device_id: str) -> str:
    return f"{SECRET_PREFIX}.{device_id}.{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_device_id(secret: str) -> str:
    """The device id a secret names; AuthError for anything that is not a device secret."""
    prefix, _, rest = secret.partition(".")
    device_id, _, random_part = rest.partition(".")
    if prefix != SECRET_PREFIX or not device_id or len(random_part) < 32 or len(secret) > 200:
        raise AuthError("not a device secret: send the secret /auth/pair gave this device")
    return device_id


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def new_code() -> str:
    """A fresh pairing code, ``ABCD-EFGH``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_code(typed: str) -> str | None:
    """The code a person meant (8 characters of the alphabet), or None if it cannot be one."""
    if len(typed) > 64:
        return None
    raw = "".join(typed.split()).replace("-", "").upper().translate(_LOOKALIKES)
    if len(raw) != CODE_LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return raw


def code_hash(key: SigningKey, code: str) -> str:
    """The stored form of a normalized code."""
    return hmac.new(key.secret, f"pairing:{code}".encode(), hashlib.sha256).hexdigest()
