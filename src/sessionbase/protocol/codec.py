"""Convex JSON values and timestamps (convex-protocol §1.5–§1.6).

u64 timestamps travel as base64 of 8 little-endian bytes. Values are plain JSON except the
tagged forms ``{"$integer"}``, ``{"$float"}`` and ``{"$bytes"}``. Python ints go out as plain
numbers (Convex ``number``): every integer sessionbase serves (times in ms, counts) fits a
float64 exactly. Convex's HTTP API writes every number as a float (``2.0``), and the PyPI
``ConvexHttpClient`` refuses a JSON integer, so ``to_convex(..., floats=True)`` does the same.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

MAX_U64 = 2**64 - 1


class CodecError(ValueError):
    """A value that is not valid Convex JSON."""


def encode_u64(value: int) -> str:
    if not 0 <= value <= MAX_U64:
        raise CodecError(f"u64 out of range: {value}")
    return base64.b64encode(struct.pack("<Q", value)).decode()


def decode_u64(text: Any) -> int:
    if not isinstance(text, str):
        raise CodecError("timestamp must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise CodecError(f"invalid base64 timestamp {text!r}") from exc
    if len(raw) != 8:
        raise CodecError(f"timestamp must be 8 bytes, got {len(raw)}")
    return int(struct.unpack("<Q", raw)[0])


def to_convex(value: Any, *, floats: bool = False) -> Any:
    """Python value → Convex JSON (for results sent to clients); with ``floats``, integers
    go out as floats (``2.0``), as Convex's HTTP API sends every ``number``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return float(value) if floats else value
    if isinstance(value, float):
        if math.isfinite(value) and not (value == 0 and math.copysign(1, value) < 0):
            return value
        return {"$float": base64.b64encode(struct.pack("<d", value)).decode()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): to_convex(v, floats=floats) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_convex(v, floats=floats) for v in value]
    raise CodecError(f"cannot encode {type(value).__name__} as a Convex value")


def from_convex(value: Any, depth: int = 0) -> Any:
    """Convex JSON → Python value (for arguments from clients)."""
    if depth > 64:
        raise CodecError("value nested too deeply")
    if isinstance(value, list):
        return [from_convex(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == "$integer":
            return struct.unpack("<q", _b64(inner, 8))[0]
        if key == "$float":
            return struct.unpack("<d", _b64(inner, 8))[0]
        if key == "$bytes":
            return _b64(inner, None)
        if key in ("$set", "$map"):
            raise CodecError(f"{key} is no longer supported")
    out = {}
    for key, inner in value.items():
        if key.startswith("$"):
            raise CodecError(f"field names may not start with '$': {key!r}")
        out[key] = from_convex(inner, depth + 1)
    return out


def _b64(text: Any, size: int | None) -> bytes:
    if not isinstance(text, str):
        raise CodecError("tagged value must hold a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise CodecError("invalid base64 in tagged value") from exc
    if size is not None and len(raw) != size:
        raise CodecError(f"tagged value must be {size} bytes")
    return raw
