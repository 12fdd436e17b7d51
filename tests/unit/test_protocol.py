"""The wire protocol without a server: the value codec, client frames, server messages, read sets.

Known vectors come from convex-js (``u64ToLong``, ``convexToJson``): timestamp 0 is
``"AAAAAAAAAAA="``, ``-0.0`` is ``{"$float": "AAAAAAAAAIA="}``, ``1n`` is
``{"$integer": "AQAAAAAAAAA="}``.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, strategies as st

from sessionbase.live.readset import ReadSet
from sessionbase.protocol import messages as m
from sessionbase.protocol.codec import (
    MAX_U64,
    CodecError,
    decode_u64,
    encode_u64,
    from_convex,
    to_convex,
)
from sessionbase.protocol.messages import (
    MAX_FRAME_BYTES,
    Action,
    AddQuery,
    Authenticate,
    Connect,
    Event,
    MessageError,
    ModifyQuerySet,
    Mutation,
    RemoveQuery,
    canonical_path,
    parse_client_message,
)


def frame(**fields: Any) -> str:
    return orjson.dumps(fields).decode()


def nested(depth: int) -> Any:
    value: Any = {"leaf": 1}
    for _ in range(depth):
        value = {"k": value}
    return value


# ------------------------------------------------------------------ u64 timestamps


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "AAAAAAAAAAA="),
        (1, "AQAAAAAAAAA="),
        (256, "AAEAAAAAAAA="),
        (MAX_U64, "//////////8="),
        (1_777_629_606_000_000_000, base64.b64encode(struct.pack("<Q", 1_777_629_606 * 10**9))),
    ],
)
def test_u64_known_vectors(value: int, text: str | bytes) -> None:
    expected = text.decode() if isinstance(text, bytes) else text
    assert encode_u64(value) == expected
    assert decode_u64(expected) == value


@given(st.integers(min_value=0, max_value=MAX_U64))
def test_u64_round_trip(value: int) -> None:
    text = encode_u64(value)
    assert len(text) == 12
    assert decode_u64(text) == value


@pytest.mark.parametrize("value", [-1, MAX_U64 + 1, -(2**63)])
def test_u64_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(CodecError, match="out of range"):
        encode_u64(value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (0, "must be a base64 string"),
        (None, "must be a base64 string"),
        ("not base64!", "invalid base64"),
        ("AAAA", "must be 8 bytes, got 3"),
        ("AAAAAAAAAAAAAA==", "must be 8 bytes, got 10"),
    ],
)
def test_u64_bad_text_is_refused(text: Any, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        decode_u64(text)


# ------------------------------------------------------------------ Convex JSON values


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (float("nan"), {"$float": "AAAAAAAA+H8="}),
        (float("inf"), {"$float": "AAAAAAAA8H8="}),
        (float("-inf"), {"$float": "AAAAAAAA8P8="}),
        (-0.0, {"$float": "AAAAAAAAAIA="}),
    ],
)
def test_special_floats_are_tagged(value: float, encoded: dict[str, str]) -> None:
    assert to_convex(value) == encoded
    back = from_convex(encoded)
    assert isinstance(back, float)
    if math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value
        assert math.copysign(1.0, back) == math.copysign(1.0, value)


def test_plain_values_stay_plain() -> None:
    value = {"a": 1, "b": 1.5, "c": 0.0, "d": None, "e": True, "f": "x", "g": [1, "y", None]}
    assert to_convex(value) == value
    assert from_convex(value) == value
    assert to_convex((1, 2)) == [1, 2]


def test_convex_http_numbers_are_floats() -> None:
    wire = orjson.dumps(to_convex({"n": 2, "t": 1_700_000_000_123, "f": 1.5, "b": True},
                                  floats=True))  # fmt: skip
    assert wire == b'{"n":2.0,"t":1700000000123.0,"f":1.5,"b":true}'


@pytest.mark.parametrize(
    ("number", "text"),
    [(0, "AAAAAAAAAAA="), (1, "AQAAAAAAAAA="), (-1, "//////////8="),
     (2**63 - 1, "/////////38="), (-(2**63), "AAAAAAAAAIA=")],
)  # fmt: skip
def test_integer_decodes_as_int64_twos_complement(number: int, text: str) -> None:
    assert base64.b64encode(struct.pack("<q", number)).decode() == text
    back = from_convex({"$integer": text})
    assert back == number
    assert type(back) is int


def test_bytes_round_trip() -> None:
    raw = bytes(range(256))
    encoded = to_convex({"blob": raw})
    assert encoded == {"blob": {"$bytes": base64.b64encode(raw).decode()}}
    assert from_convex(encoded) == {"blob": raw}
    assert to_convex(b"") == {"$bytes": ""}
    assert from_convex({"$bytes": ""}) == b""


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
json_key = st.text(max_size=6).filter(lambda k: not k.startswith("$"))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_key, inner, max_size=4),
    max_leaves=20,
)


@given(json_value)
def test_values_round_trip_through_the_wire(value: Any) -> None:
    wire = orjson.loads(orjson.dumps(to_convex(value)))
    back = from_convex(wire)
    assert orjson.dumps(to_convex(back)) == orjson.dumps(to_convex(value))
    assert _same(back, value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"$id": "x"}, "may not start with '\\$'"),
        ({"ok": 1, "$bad": 2}, "may not start with '\\$'"),
        ({"outer": {"$where": 1}}, "may not start with '\\$'"),
        ([{"$x": 1}], "may not start with '\\$'"),
        ({"$integer": "AAAA", "extra": 1}, "may not start with '\\$'"),
        ({"$set": []}, "no longer supported"),
        ({"$map": []}, "no longer supported"),
        ({"$integer": "AAAA"}, "must be 8 bytes"),
        ({"$integer": 5}, "must hold a base64 string"),
        ({"$float": "!!"}, "invalid base64"),
        ({"$bytes": None}, "must hold a base64 string"),
    ],
)
def test_invalid_values_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        from_convex(value)


def test_deep_nesting_is_refused() -> None:
    assert from_convex(nested(60)) == nested(60)
    with pytest.raises(CodecError, match="nested too deeply"):
        from_convex(nested(100))
    deep_list: Any = 1
    for _ in range(100):
        deep_list = [deep_list]
    with pytest.raises(CodecError, match="nested too deeply"):
        from_convex(deep_list)


def test_unencodable_python_values_are_refused() -> None:
    with pytest.raises(CodecError, match="cannot encode set"):
        to_convex({1, 2})
    with pytest.raises(CodecError, match="cannot encode object"):
        to_convex({"x": object()})


# ------------------------------------------------------------------ function paths


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("messages:list", "messages:list"),
        ("messages.js:list", "messages:list"),
        ("messages", "messages:default"),
        ("messages.js", "messages:default"),
        ("dir/file:fn", "dir/file:fn"),
        ("dir/file.js:fn", "dir/file:fn"),
        ("dir/file", "dir/file:default"),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


@pytest.mark.parametrize("path", ["", None, 5, ["messages:list"], "m:" + "x" * 255])
def test_canonical_path_refuses_non_paths(path: Any) -> None:
    with pytest.raises(MessageError, match="udfPath"):
        canonical_path(path)


# ------------------------------------------------------------------ client frames


def test_parse_connect() -> None:
    message = parse_client_message(
        frame(
            type="Connect",
            sessionId="0b5c-uuid",
            connectionCount=3,
            lastCloseReason="x",
            maxObservedTimestamp=encode_u64(12345),
            clientTs=1700000000000,
        )  # fmt: skip
    )
    assert message == Connect("0b5c-uuid", 3, 12345)
    bare = parse_client_message(frame(type="Connect", sessionId="s"))
    assert bare == Connect("s", 0, None)


def test_parse_modify_query_set() -> None:
    message = parse_client_message(
        frame(
            type="ModifyQuerySet",
            baseVersion=2,
            newVersion=3,
            modifications=[
                {
                    "type": "Add",
                    "queryId": 7,
                    "udfPath": "messages.js:tail",
                    "args": [{"threadId": "t1", "n": {"$integer": encode_u64(5)}}],
                    "journal": "j1",
                    "componentPath": None,
                },
                {"type": "Add", "queryId": 8, "udfPath": "status:get"},
                {"type": "Remove", "queryId": 4},
            ],
        )  # fmt: skip
    )
    assert message == ModifyQuerySet(
        2,
        3,
        [
            AddQuery(7, "messages:tail", {"threadId": "t1", "n": 5}, "j1"),
            AddQuery(8, "status:get", {}, None),
            RemoveQuery(4),
        ],
    )


def test_parse_mutation_action_authenticate_event() -> None:
    args = [{"id": "t1", "title": "New", "blob": {"$bytes": "AP8="}}]
    assert parse_client_message(
        frame(type="Mutation", requestId=0, udfPath="threads:rename", args=args)
    ) == Mutation(0, "threads:rename", {"id": "t1", "title": "New", "blob": b"\x00\xff"})
    assert parse_client_message(
        frame(type="Action", requestId=9, udfPath="jobs", args=[{}])
    ) == Action(9, "jobs:default", {})
    assert parse_client_message(
        frame(type="Authenticate", tokenType="User", value="jwt", baseVersion=0)
    ) == Authenticate("User", "jwt", 0)
    assert parse_client_message(
        frame(
            type="Authenticate",
            tokenType="Admin",
            value="key",
            baseVersion=4,
            impersonating={"x": 1},
        )  # fmt: skip
    ) == Authenticate("Admin", "key", 4)
    assert parse_client_message(
        frame(type="Authenticate", tokenType="None", baseVersion=1)
    ) == Authenticate("None", None, 1)
    assert parse_client_message(
        frame(type="Event", eventType="NetworkRecoveryReconnect", event={"a": 1})
    ) == Event("NetworkRecoveryReconnect")


def test_parse_accepts_bytes_frames() -> None:
    assert parse_client_message(b'{"type":"Connect","sessionId":"s"}') == Connect("s", 0, None)


def _add(**fields: Any) -> str:
    mod = {"type": "Add", "queryId": 1, "udfPath": "threads:recent", "args": [{}], **fields}
    return frame(type="ModifyQuerySet", baseVersion=0, newVersion=1, modifications=[mod])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ("[]", "must be a JSON object"),
        ("1", "must be a JSON object"),
        ('"Connect"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        (frame(sessionId="s"), "unknown message type None"),
        (frame(type="Subscribe"), "unknown message type 'Subscribe'"),
        (frame(type="connect", sessionId="s"), "unknown message type 'connect'"),
        (frame(type="Connect"), "sessionId"),
        (frame(type="Connect", sessionId=""), "sessionId"),
        (frame(type="Connect", sessionId=5), "sessionId"),
        (frame(type="Connect", sessionId="s" * 129), "sessionId"),
        (frame(type="Connect", sessionId="s", maxObservedTimestamp="AAAA"), "8 bytes"),
        (frame(type="Connect", sessionId="s", maxObservedTimestamp=17), "base64"),
        (frame(type="Connect", sessionId="s", connectionCount=-1), "connectionCount"),
        (frame(type="ModifyQuerySet", baseVersion=0, newVersion=1), "modifications"),
        (frame(type="ModifyQuerySet", baseVersion=0, newVersion=1, modifications={}),
         "modifications"),
        (frame(type="ModifyQuerySet", baseVersion=0, newVersion=1, modifications=[1]),
         "modification must be an object"),
        (frame(type="ModifyQuerySet", newVersion=1, modifications=[]), "baseVersion"),
        (frame(type="ModifyQuerySet", baseVersion=0, newVersion=-1, modifications=[]),
         "newVersion"),
        (frame(type="ModifyQuerySet", baseVersion="0", newVersion=1, modifications=[]),
         "baseVersion"),
        (_add(type="Replace"), "unknown modification type 'Replace'"),
        (_add(queryId=-1), "queryId"),
        (_add(queryId="1"), "queryId"),
        (_add(queryId=True), "queryId"),
        (_add(queryId=1.0), "queryId"),
        (_add(queryId=None), "queryId"),
        (_add(queryId=2**53), "queryId"),
        (_add(udfPath=None), "udfPath"),
        (_add(udfPath=""), "udfPath"),
        (_add(args=[]), "one-element array"),
        (_add(args=[{}, {}]), "one-element array"),
        (_add(args=["x"]), "must be an object"),
        (_add(args=[[1]]), "must be an object"),
        (_add(args=[None]), "must be an object"),
        (_add(args="x"), "one-element array"),
        (_add(args=[{"$where": 1}]), "may not start with"),
        (_add(args=[{"n": {"$set": []}}]), "no longer supported"),
        (_add(args=[nested(100)]), "nested too deeply"),
        (frame(type="ModifyQuerySet", baseVersion=0, newVersion=1,
               modifications=[{"type": "Remove"}]), "queryId"),
        (frame(type="Mutation", udfPath="projects:save", args=[{}]), "requestId"),
        (frame(type="Mutation", requestId=-5, udfPath="projects:save", args=[{}]), "requestId"),
        (frame(type="Mutation", requestId="0", udfPath="projects:save", args=[{}]),
         "requestId"),
        (frame(type="Mutation", requestId=0, args=[{}]), "udfPath"),
        (frame(type="Mutation", requestId=0, udfPath="projects:save", args=[{}, {}]),
         "one-element array"),
        (frame(type="Action", requestId=0, udfPath="a:b", args=[]), "one-element array"),
        (frame(type="Authenticate", tokenType="Bearer", value="x", baseVersion=0),
         "tokenType"),
        (frame(type="Authenticate", value="x", baseVersion=0), "tokenType"),
        (frame(type="Authenticate", tokenType="None"), "baseVersion"),
    ],
)  # fmt: skip
def test_malformed_frames_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        parse_client_message(raw)


def test_json_nested_past_the_parser_limit_is_refused() -> None:
    raw = '{"type":"Event","event":' + "[" * 2000 + "]" * 2000 + "}"
    with pytest.raises(MessageError, match="not JSON"):
        parse_client_message(raw)


def test_oversized_frame_is_refused_before_parsing() -> None:
    padding = "x" * (MAX_FRAME_BYTES + 1 - len('{"type":"Event","eventType":""}'))
    raw = '{"type":"Event","eventType":"' + padding + '"}'
    assert len(raw) == MAX_FRAME_BYTES + 1
    with pytest.raises(MessageError, match="larger than"):
        parse_client_message(raw)
    with pytest.raises(MessageError, match="larger than"):
        parse_client_message(raw.encode())
    fits = '{"type":"Event","eventType":"' + padding[:-1] + '"}'
    assert parse_client_message(fits) == Event(padding[:-1])


def test_bare_args_object_is_refused() -> None:
    with pytest.raises(MessageError, match="one-element array"):
        parse_client_message(_add(args={"limit": 5}))


# ------------------------------------------------------------------ server messages


def test_transition_text() -> None:
    # results arrive as JSON text, encoded once for every connection that receives them
    text = m.transition(
        (0, 0, 0),
        (1, 0, 2),
        (3,),
        (
            (1, None, "[1, 2]", None),
            (2, "no query named 'x:y'", "null", None),
            (4, None, '{"page":[]}', '5|"end'),
        ),
    )
    assert orjson.loads(text) == {
        "type": "Transition",
        "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
        "endVersion": {"querySet": 1, "identity": 0, "ts": "AgAAAAAAAAA="},
        "modifications": [
            {"type": "QueryRemoved", "queryId": 3},
            {"type": "QueryUpdated", "queryId": 1, "value": [1, 2], "logLines": [],
             "journal": None},
            {"type": "QueryFailed", "queryId": 2, "errorMessage": "no query named 'x:y'",
             "logLines": [], "journal": None},
            {"type": "QueryUpdated", "queryId": 4, "value": {"page": []}, "logLines": [],
             "journal": '5|"end'},
        ],
    }  # fmt: skip
    later = orjson.loads(m.transition((3, 1, 256), (3, 1, 256), (), ()))
    assert later["endVersion"] == {"querySet": 3, "identity": 1, "ts": "AAEAAAAAAAA="}
    assert later["modifications"] == []


def test_server_message_shapes() -> None:
    assert m.mutation_response(4, True, "id1", 256) == {
        "type": "MutationResponse", "requestId": 4, "success": True, "result": "id1",
        "logLines": [], "ts": "AAEAAAAAAAA=",
    }  # fmt: skip
    assert m.mutation_response(5, False, "bad", None) == {
        "type": "MutationResponse", "requestId": 5, "success": False, "result": "bad",
        "logLines": [],
    }  # fmt: skip
    assert "ts" not in m.mutation_response(6, False, "bad", 99)
    assert m.action_response(7, False, "no action") == {
        "type": "ActionResponse", "requestId": 7, "success": False, "result": "no action",
        "logLines": [],
    }  # fmt: skip
    assert m.auth_error("nope", 2) == {
        "type": "AuthError", "error": "nope", "baseVersion": 2, "authUpdateAttempted": True,
    }  # fmt: skip
    assert m.PING == {"type": "Ping"}


# ------------------------------------------------------------------ read sets


def reads(*items: tuple[str, str] | str) -> ReadSet:
    rs = ReadSet()
    for item in items:
        if isinstance(item, tuple):
            rs.add(*item)
        else:
            rs.add(item)
    return rs


@pytest.mark.parametrize(
    ("read", "touched", "overlap"),
    [
        # a key read is invalidated by a write to that key only
        (reads(("messages", "t1")), ["messages:t1"], True),
        (reads(("messages", "t1")), ["messages:t2"], False),
        (reads(("messages", "t1")), ["threads:t1"], False),
        (reads(("messages", "t1")), ["messages:t10"], False),
        (reads(("messages", "t1")), ["sources:/x", "messages:t1"], True),
        # a table scan is invalidated by a write to any key of that table
        (reads("threads"), ["threads:t9"], True),
        (reads("threads"), ["threads:*"], True),
        (reads("threads"), ["messages:t9", "projects:p1"], False),
        # a whole-table write invalidates every key read of that table
        (reads(("threads", "t1")), ["threads:*"], True),
        (reads(("skills", "x")), ["skills:*"], True),
        (reads(("messages", "t1")), ["skills:*"], False),
        (reads("skills"), ["skills:*"], True),
        # a write the query cannot have read
        (reads("projects", "threads"), ["user_metadata:*"], False),
        (reads("sources", "threads"), ["sources:/a/b.jsonl"], True),
        # nothing read, or nothing written
        (reads(), ["threads:*", "messages:t1"], False),
        (reads("threads", ("messages", "t1")), [], False),
    ],
)
def test_read_set_overlap(read: ReadSet, touched: list[str], overlap: bool) -> None:
    assert read.overlaps(touched) is overlap
    assert read.overlaps(iter(touched)) is overlap


def test_read_set_records_keys_and_tables_separately() -> None:
    rs = reads(("messages", "a:b"), "threads", ("threads", "*"))
    assert rs.tables == {"threads"}
    assert rs.keys == {"messages:a:b"}
    assert rs.overlaps(["messages:a:b"])
    assert not rs.overlaps(["messages:a"])
    assert repr(rs) == "ReadSet(['threads'] + ['messages:a:b'])"
