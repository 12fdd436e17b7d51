"""Sync protocol messages (convex-protocol §1.5): parse what clients send, build what we send.

Client frames are JSON text, one message per frame, tagged by ``type``. Anything malformed
raises ``MessageError``; the server answers it by closing that one connection.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from sessionbase.protocol.codec import CodecError, decode_u64, encode_u64, from_convex

MAX_FRAME_BYTES = 8 * 1024 * 1024


class MessageError(ValueError):
    """A client frame that breaks the protocol."""


@dataclass(frozen=True)
class Connect:
    session_id: str
    connection_count: int
    max_observed_ts: int | None


@dataclass(frozen=True)
class AddQuery:
    query_id: int
    udf_path: str
    args: dict[str, Any]
    journal: str | None


@dataclass(frozen=True)
class RemoveQuery:
    query_id: int


@dataclass(frozen=True)
class ModifyQuerySet:
    base_version: int
    new_version: int
    modifications: list[AddQuery | RemoveQuery]


@dataclass(frozen=True)
class Mutation:
    request_id: int
    udf_path: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Action:
    request_id: int
    udf_path: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Authenticate:
    token_type: str
    value: str | None
    base_version: int


@dataclass(frozen=True)
class Event:
    event_type: str


ClientMessage = Connect | ModifyQuerySet | Mutation | Action | Authenticate | Event


def canonical_path(path: Any) -> str:
    """``"messages:list"`` as Convex names it: ``.js`` stripped, ``:default`` if no function."""
    if not isinstance(path, str) or not path or len(path) > 256:
        raise MessageError("udfPath must be a non-empty string")
    module, colon, function = path.partition(":")
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{function if colon else 'default'}"


def _int(obj: dict[str, Any], key: str, *, optional: bool = False) -> int:
    value = obj.get(key)
    if value is None and optional:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise MessageError(f"{key} must be a non-negative integer")
    return value


def _args(obj: dict[str, Any]) -> dict[str, Any]:
    args = obj.get("args", [{}])
    if not isinstance(args, list) or len(args) != 1:
        raise MessageError("args must be a one-element array")
    args = args[0]
    if not isinstance(args, dict):
        raise MessageError("args must be an object")
    try:
        value = from_convex(args)
    except CodecError as exc:
        raise MessageError(str(exc)) from exc
    assert isinstance(value, dict)
    return value


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """Decode one client frame; raises MessageError on anything we cannot accept."""
    if len(frame) > MAX_FRAME_BYTES:
        raise MessageError(f"frame larger than {MAX_FRAME_BYTES} bytes")
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"frame is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MessageError("frame must be a JSON object")
    kind = obj.get("type")
    if kind == "Connect":
        session_id = obj.get("sessionId")
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 128:
            raise MessageError("Connect needs a sessionId")
        raw_ts = obj.get("maxObservedTimestamp")
        try:
            max_ts = decode_u64(raw_ts) if raw_ts is not None else None
        except CodecError as exc:
            raise MessageError(str(exc)) from exc
        return Connect(session_id, _int(obj, "connectionCount", optional=True), max_ts)
    if kind == "ModifyQuerySet":
        mods: list[AddQuery | RemoveQuery] = []
        raw_mods = obj.get("modifications")
        if not isinstance(raw_mods, list):
            raise MessageError("modifications must be a list")
        for mod in raw_mods:
            if not isinstance(mod, dict):
                raise MessageError("a modification must be an object")
            query_id = _int(mod, "queryId")
            if mod.get("type") == "Add":
                journal = mod.get("journal")
                mods.append(AddQuery(query_id, canonical_path(mod.get("udfPath")), _args(mod),
                                     journal if isinstance(journal, str) else None))  # fmt: skip
            elif mod.get("type") == "Remove":
                mods.append(RemoveQuery(query_id))
            else:
                raise MessageError(f"unknown modification type {mod.get('type')!r}")
        return ModifyQuerySet(_int(obj, "baseVersion"), _int(obj, "newVersion"), mods)
    if kind in ("Mutation", "Action"):
        cls = Mutation if kind == "Mutation" else Action
        return cls(_int(obj, "requestId"), canonical_path(obj.get("udfPath")), _args(obj))
    if kind == "Authenticate":
        token_type = obj.get("tokenType")
        if token_type not in ("User", "Admin", "None"):
            raise MessageError("tokenType must be User, Admin or None")
        value = obj.get("value")
        return Authenticate(token_type, value if isinstance(value, str) else None,
                            _int(obj, "baseVersion"))  # fmt: skip
    if kind == "Event":
        return Event(str(obj.get("eventType", "")))
    raise MessageError(f"unknown message type {kind!r}")


# ------------------------------------------------------------------ server → client


def dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def query_failed(query_id: int, message: str, journal: str | None = None) -> dict[str, Any]:
    return {"type": "QueryFailed", "queryId": query_id, "errorMessage": message, "logLines": [],
            "journal": journal}  # fmt: skip


def query_removed(query_id: int) -> dict[str, Any]:
    return {"type": "QueryRemoved", "queryId": query_id}


Version = tuple[int, int, int]
"""A client's state version: (query set, identity, ts), plain so that it hashes in C."""
Changes = tuple[tuple[int, str | None, str, str | None], ...]
"""(query id, error or None, result JSON, journal or None) for each query that moves in a
Transition."""


def transition(start: Version, end: Version, removed: tuple[int, ...], changes: Changes) -> str:
    """A Transition's text. Each result arrives as JSON text, encoded once however many
    connections receive it, so the frame is assembled around it instead of re-encoding it."""
    parts = [dumps(query_removed(qid)) for qid in removed]
    for qid, error, value_json, journal in changes:
        if error is not None:
            parts.append(dumps(query_failed(qid, error, journal)))
        else:
            parts.append(
                f'{{"type":"QueryUpdated","queryId":{qid},"value":{value_json},'
                f'"logLines":[],"journal":{orjson.dumps(journal).decode()}}}'
            )
    return (
        f'{{"type":"Transition","startVersion":{_version(start)},'
        f'"endVersion":{_version(end)},"modifications":[{",".join(parts)}]}}'
    )


@functools.lru_cache(maxsize=4096)
def _version(v: Version) -> str:
    """A version's JSON; cached because a fan-out encodes the same few versions many times."""
    return f'{{"querySet":{v[0]},"identity":{v[1]},"ts":"{encode_u64(v[2])}"}}'


def mutation_response(request_id: int, ok: bool, result: Any, ts: int | None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "MutationResponse", "requestId": request_id,
                               "success": ok, "result": result, "logLines": []}  # fmt: skip
    if ok and ts is not None:
        message["ts"] = encode_u64(ts)
    return message


def action_response(request_id: int, ok: bool, result: Any) -> dict[str, Any]:
    return {"type": "ActionResponse", "requestId": request_id, "success": ok, "result": result,
            "logLines": []}  # fmt: skip


def auth_error(error: str, base_version: int, attempted: bool = True) -> dict[str, Any]:
    """``attempted``: the error answers an ``Authenticate`` (else the identity stopped being
    valid while in use: expired or revoked)."""
    return {"type": "AuthError", "error": error, "baseVersion": base_version,
            "authUpdateAttempted": attempted}  # fmt: skip


PING = {"type": "Ping"}
