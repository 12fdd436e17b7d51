"""A scripted, loopback-only mock of the OpenAI Responses API, for driving the real Codex CLI.

Why: integration tests need real rollout files written by a real Codex binary, but must not
reach any network model. Codex talks to a custom model provider over ``POST {base_url}/responses``
with a streamed SSE answer; this server plays a fixed *script* of model responses so every run
is deterministic and fast.

A script is a list of turns; a turn is a list of model responses; each model response is either a
:class:`Reply` (a list of output items: assistant text, reasoning, tool calls) or a failure
(:class:`HttpError`, :class:`ResponseFailed`, :class:`StreamClosed`). Codex calls the model once
per sampling step: a turn with a tool call needs (at least) two responses, the call and the answer
that follows the tool output. The server answers the N-th POST with the N-th response of the
flattened script and records every request, so tests can check what Codex sent (tool outputs,
the advertised ``tools`` array, ...).

Tool shapes are those Codex 0.169.0 advertises for model ``gpt-5.5``: the ``exec_command``
function (``{"cmd": "..."}``, unified exec) for shell commands and the freeform ``apply_patch``
custom tool (``custom_tool_call`` whose ``input`` is the patch text).

Only the standard library is used (``zstandard`` is used if a request is zstd-compressed and it
is importable). The server binds to 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import itertools
import json
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeAlias

__all__ = [
    "ApplyPatch",
    "CustomToolCall",
    "ExecCommand",
    "FunctionCall",
    "HttpError",
    "Message",
    "MockModelServer",
    "ModelResponse",
    "OutputItem",
    "Reasoning",
    "RecordedRequest",
    "Reply",
    "ResponseFailed",
    "Script",
    "StreamClosed",
    "ToolSearch",
    "Usage",
    "normalize_script",
]

# --------------------------------------------------------------------------------------------
# Script data model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """An assistant message (``output_text``); becomes an ``AgentMessage`` item in the rollout."""

    text: str
    id: str | None = None
    phase: str | None = None
    """Optional Responses ``phase`` (``"commentary"`` / ``"final_answer"``); omitted when None."""


@dataclass(frozen=True)
class Reasoning:
    """A reasoning item: summary parts (shown to users) and optional raw reasoning text."""

    summary: tuple[str, ...]
    content: tuple[str, ...] = ()
    encrypted_content: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class ExecCommand:
    """A call of Codex's ``exec_command`` tool (unified exec): run ``cmd`` in a shell."""

    cmd: str
    call_id: str | None = None
    workdir: str | None = None
    yield_time_ms: int | None = None
    """How long Codex waits for the command before returning a session id; the default (10 s in
    0.169.0) is ample for quick commands. Keep commands short: a still-running command turns
    into a ``write_stdin`` session, which this script format does not model."""
    max_output_tokens: int | None = None
    login: bool | None = None
    """None omits the argument, as real models do (Codex then runs ``bash -lc``); ``False``
    makes Codex run ``bash -c`` without login profiles."""
    id: str | None = None

    def arguments(self) -> dict[str, Any]:
        """The JSON arguments object Codex expects for ``exec_command``."""
        args: dict[str, Any] = {"cmd": self.cmd}
        if self.workdir is not None:
            args["workdir"] = self.workdir
        if self.yield_time_ms is not None:
            args["yield_time_ms"] = self.yield_time_ms
        if self.max_output_tokens is not None:
            args["max_output_tokens"] = self.max_output_tokens
        if self.login is not None:
            args["login"] = self.login
        return args


@dataclass(frozen=True)
class FunctionCall:
    """Any ``function_call`` (e.g. the legacy ``shell`` tool with ``{"command": [...]}``)."""

    name: str
    arguments: Mapping[str, Any] | str
    call_id: str | None = None
    id: str | None = None
    namespace: str | None = None
    """The Responses ``namespace`` of a namespaced tool (Codex names an MCP server's tools
    ``mcp__<server>__``); omitted when None."""


@dataclass(frozen=True)
class ToolSearch:
    """A call of Codex's client-side ``tool_search`` tool (``tool_search_call``): Codex answers
    with a ``tool_search_output`` of the deferred tools (MCP servers' among them) matching
    ``query``, which the model may call from the next response on."""

    query: str
    limit: int | None = None
    call_id: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class ApplyPatch:
    """A call of the freeform ``apply_patch`` tool; ``patch`` is ``*** Begin Patch ...`` text."""

    patch: str
    call_id: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class CustomToolCall:
    """Any ``custom_tool_call`` (freeform tool input)."""

    name: str
    input: str
    call_id: str | None = None
    id: str | None = None


OutputItem: TypeAlias = (
    Message | Reasoning | ExecCommand | FunctionCall | ToolSearch | ApplyPatch | CustomToolCall
)


@dataclass(frozen=True)
class Usage:
    """Token usage reported in ``response.completed``; Codex turns it into ``token_count``."""

    input_tokens: int = 1000
    cached_input_tokens: int = 0
    output_tokens: int = 50
    reasoning_output_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_output_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True)
class Reply:
    """A successful streamed model response made of output items."""

    items: tuple[OutputItem, ...]
    usage: Usage | None = field(default_factory=Usage)
    """None omits ``usage`` from ``response.completed`` (then Codex writes no token counts)."""
    stream_deltas: bool = True
    """Also send ``output_item.added`` and text deltas, as the real API does."""
    delay_s: float = 0.0
    """Sleep this long after the items and before ``response.completed``."""
    gate: threading.Event | None = field(default=None, compare=False)
    """If set, wait for this event after ``response.created`` and before the first item: holds
    Codex mid-turn so a test can inspect the rollout (live-watch tests)."""
    completion_gate: threading.Event | None = field(default=None, compare=False)
    """If set, wait for this event after the items and before ``response.completed``. Codex
    records each item when its ``output_item.done`` arrives, so the items are already in the
    rollout while this gate holds."""
    gate_timeout_s: float = 30.0
    """Upper bound for each gate wait (the reply proceeds afterwards)."""


@dataclass(frozen=True)
class HttpError:
    """Answer with a non-2xx HTTP status and an OpenAI-style JSON error body.

    400 is not retried by Codex (the turn fails at once); 5xx would be retried, but the harness
    config sets ``request_max_retries = 0``.
    """

    status: int = 400
    message: str = "mock: invalid request"
    type: str = "invalid_request_error"
    code: str | None = None


@dataclass(frozen=True)
class ResponseFailed:
    """A 200 SSE stream that ends with ``response.failed`` (after optional items)."""

    message: str = "mock: the model failed"
    code: str = "server_error"
    items: tuple[OutputItem, ...] = ()


@dataclass(frozen=True)
class StreamClosed:
    """A 200 SSE stream that sends the items and closes without ``response.completed``."""

    items: tuple[OutputItem, ...] = ()


ModelResponse: TypeAlias = Reply | HttpError | ResponseFailed | StreamClosed
ResponseLike: TypeAlias = ModelResponse | Sequence[OutputItem]
"""A bare sequence of output items is shorthand for ``Reply(items=...)``."""
Script: TypeAlias = Sequence[Sequence[ResponseLike]]


def normalize_script(script: Script) -> list[list[ModelResponse]]:
    """Return the script with every bare item list turned into a :class:`Reply`."""
    turns: list[list[ModelResponse]] = []
    for turn in script:
        responses: list[ModelResponse] = []
        for resp in turn:
            if isinstance(resp, Reply | HttpError | ResponseFailed | StreamClosed):
                responses.append(resp)
            else:
                responses.append(Reply(items=tuple(resp)))
        turns.append(responses)
    return turns


# --------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the server received, with the script slot that answered it."""

    index: int
    """0-based arrival order over all requests."""
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    raw_body: bytes
    body: Any
    """Parsed JSON body (None if absent or not JSON)."""
    received_at: float
    turn_index: int | None
    """Index of the script turn that answered, None for unexpected requests."""
    response_index: int | None
    """Index of the response within that turn."""
    response: ModelResponse | None

    @property
    def turn_metadata(self) -> dict[str, Any]:
        """Codex's ``x-codex-turn-metadata`` header (turn_id, thread_id, ...), parsed."""
        raw = self.headers.get("x-codex-turn-metadata")
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def codex_turn_id(self) -> str | None:
        """The Codex turn id this model call belongs to, from the request headers."""
        turn_id = self.turn_metadata.get("turn_id")
        return turn_id if isinstance(turn_id, str) else None

    @property
    def input_items(self) -> list[dict[str, Any]]:
        """The ``input`` array (conversation history) Codex sent."""
        if isinstance(self.body, dict) and isinstance(self.body.get("input"), list):
            return [i for i in self.body["input"] if isinstance(i, dict)]
        return []

    @property
    def tool_names(self) -> list[str]:
        """Names (or types, for unnamed tools like ``web_search``) of advertised tools."""
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        if not isinstance(tools, list):
            return []
        return [str(t.get("name") or t.get("type")) for t in tools if isinstance(t, dict)]

    def tool_output(self, call_id: str) -> Any:
        """The output Codex sent back for ``call_id`` (function or custom tool), or None."""
        for item in self.input_items:
            if (
                item.get("type") in ("function_call_output", "custom_tool_call_output")
                and item.get("call_id") == call_id
            ):
                return item.get("output")
        return None

    def user_texts(self) -> list[str]:
        """Texts of all user-role input messages (including injected context messages)."""
        texts: list[str] = []
        for item in self.input_items:
            if item.get("type") == "message" and item.get("role") == "user":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        texts.append(part["text"])
        return texts


# --------------------------------------------------------------------------------------------
# SSE encoding
# --------------------------------------------------------------------------------------------


class _Ids:
    """Deterministic ids for items and calls that the script leaves unnamed."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self, prefix: str) -> str:
        return f"{prefix}_mock{next(self._counter):04d}"


def _item_json(item: OutputItem, ids: _Ids) -> dict[str, Any]:
    """The Responses API JSON for one output item, as sent in ``output_item.done``."""
    if isinstance(item, Message):
        msg: dict[str, Any] = {
            "type": "message",
            "id": item.id or ids.next("msg"),
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": item.text, "annotations": []}],
        }
        if item.phase is not None:
            msg["phase"] = item.phase
        return msg
    if isinstance(item, Reasoning):
        return {
            "type": "reasoning",
            "id": item.id or ids.next("rs"),
            "summary": [{"type": "summary_text", "text": s} for s in item.summary],
            "content": [{"type": "reasoning_text", "text": c} for c in item.content],
            "encrypted_content": item.encrypted_content,
        }
    if isinstance(item, ExecCommand):
        return {
            "type": "function_call",
            "id": item.id or ids.next("fc"),
            "status": "completed",
            "call_id": item.call_id or ids.next("call"),
            "name": "exec_command",
            "arguments": json.dumps(item.arguments()),
        }
    if isinstance(item, FunctionCall):
        args = item.arguments if isinstance(item.arguments, str) else json.dumps(item.arguments)
        call = {
            "type": "function_call",
            "id": item.id or ids.next("fc"),
            "status": "completed",
            "call_id": item.call_id or ids.next("call"),
            "name": item.name,
            "arguments": args,
        }
        if item.namespace is not None:
            call["namespace"] = item.namespace
        return call
    if isinstance(item, ToolSearch):
        arguments: dict[str, Any] = {"query": item.query}
        if item.limit is not None:
            arguments["limit"] = item.limit
        return {
            "type": "tool_search_call",
            "id": item.id or ids.next("tsc"),
            "status": "completed",
            "call_id": item.call_id or ids.next("call"),
            "execution": "client",
            "arguments": arguments,
        }
    if isinstance(item, ApplyPatch):
        return {
            "type": "custom_tool_call",
            "id": item.id or ids.next("ctc"),
            "status": "completed",
            "call_id": item.call_id or ids.next("call"),
            "name": "apply_patch",
            "input": item.patch,
        }
    if isinstance(item, CustomToolCall):
        return {
            "type": "custom_tool_call",
            "id": item.id or ids.next("ctc"),
            "status": "completed",
            "call_id": item.call_id or ids.next("call"),
            "name": item.name,
            "input": item.input,
        }
    raise TypeError(f"not an output item: {item!r}")


def _chunks(text: str, size: int = 64) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _item_events(item_json: dict[str, Any], index: int, stream_deltas: bool) -> list[Any]:
    """SSE event payloads for one output item (added, deltas, done)."""
    events: list[Any] = []
    if stream_deltas:
        added = dict(item_json)
        if item_json["type"] == "message":
            added["content"] = []
            added["status"] = "in_progress"
        events.append({"type": "response.output_item.added", "output_index": index, "item": added})
        if item_json["type"] == "message":
            for part in item_json["content"]:
                for chunk in _chunks(part["text"]):
                    events.append(
                        {
                            "type": "response.output_text.delta",
                            "item_id": item_json["id"],
                            "output_index": index,
                            "content_index": 0,
                            "delta": chunk,
                        }
                    )
    events.append({"type": "response.output_item.done", "output_index": index, "item": item_json})
    return events


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (pytest treats stray output as noise)."""

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "zstd":
            import zstandard  # only needed if Codex ever compresses requests

            raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        return raw

    def do_POST(self) -> None:
        raw = self._read_body()
        mock = self.server.mock
        if self.path.rstrip("/") != mock.responses_path:
            mock._record(self, raw, None)
            self._send_json(404, {"error": {"message": f"mock: no route {self.path}"}})
            return
        slot = mock._next_slot()
        mock._record(self, raw, slot)
        if slot is None:
            self._send_json(
                500,
                {"error": {"message": "mock: script exhausted", "type": "server_error"}},
            )
            return
        _, _, response = slot
        self._answer(response)

    def do_GET(self) -> None:
        self.server.mock._record(self, b"", None)
        self._send_json(404, {"error": {"message": f"mock: no route {self.path}"}})

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _answer(self, response: ModelResponse) -> None:
        mock = self.server.mock
        if isinstance(response, HttpError):
            error: dict[str, Any] = {"message": response.message, "type": response.type}
            if response.code is not None:
                error["code"] = response.code
            self._send_json(response.status, {"error": error})
            return
        response_id = mock._ids.next("resp")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        write = self.wfile.write
        write(
            _sse(
                {
                    "type": "response.created",
                    "response": {"id": response_id, "status": "in_progress", "output": []},
                }
            )
        )
        self.wfile.flush()
        if isinstance(response, Reply) and response.gate is not None:
            response.gate.wait(response.gate_timeout_s)
        deltas = response.stream_deltas if isinstance(response, Reply) else False
        items_json = [_item_json(item, mock._ids) for item in response.items]
        for index, item_json in enumerate(items_json):
            for event in _item_events(item_json, index, deltas):
                write(_sse(event))
            self.wfile.flush()
        if isinstance(response, StreamClosed):
            self.wfile.flush()
            return
        if isinstance(response, ResponseFailed):
            write(
                _sse(
                    {
                        "type": "response.failed",
                        "response": {
                            "id": response_id,
                            "status": "failed",
                            "error": {"code": response.code, "message": response.message},
                        },
                    }
                )
            )
            self.wfile.flush()
            return
        if response.delay_s > 0:
            time.sleep(response.delay_s)
        if response.completion_gate is not None:
            self.wfile.flush()
            response.completion_gate.wait(response.gate_timeout_s)
        completed: dict[str, Any] = {"id": response_id, "status": "completed", "output": []}
        if response.usage is not None:
            completed["usage"] = response.usage.to_json()
        write(_sse({"type": "response.completed", "response": completed}))
        self.wfile.flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    mock: MockModelServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Codex hanging up mid-stream (killed, interrupted) is normal; anything else is a
        harness bug, kept for :meth:`MockModelServer.assert_script_consumed`."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            return
        self.mock._handler_errors.append(traceback.format_exc())


class MockModelServer:
    """Scripted Responses API on 127.0.0.1; use as ``with MockModelServer(script) as server``.

    ``server.base_url`` (``http://127.0.0.1:<port>/v1``) goes into the Codex provider config.
    Responses are served strictly in script order; requests beyond the script get HTTP 500 and
    are listed in :attr:`unexpected_requests`. Call :meth:`assert_script_consumed` at the end of
    a test to catch a script that does not match what Codex actually did.
    """

    responses_path = "/v1/responses"

    def __init__(self, script: Script = (), *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the mock model server binds to loopback only")
        self._lock = threading.Lock()
        self._turns: list[list[ModelResponse]] = normalize_script(script)
        self._slots: list[tuple[int, int, ModelResponse]] = [
            (t, r, resp) for t, turn in enumerate(self._turns) for r, resp in enumerate(turn)
        ]
        self._served = 0
        self._requests: list[RecordedRequest] = []
        self._ids = _Ids()
        self._host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._request_cond = threading.Condition(self._lock)
        self._handler_errors: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> MockModelServer:
        """Bind a free port and serve from a daemon thread."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.mock = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, name="mock-responses-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MockModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """Provider ``base_url``; Codex appends ``/responses``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- script -------------------------------------------------------------------------------

    def extend(self, script: Script) -> None:
        """Append turns to the script (e.g. before a follow-up ``exec resume``)."""
        with self._lock:
            first = len(self._turns)
            for offset, turn in enumerate(normalize_script(script)):
                self._turns.append(turn)
                self._slots.extend((first + offset, r, resp) for r, resp in enumerate(turn))

    @property
    def responses_served(self) -> int:
        with self._lock:
            return self._served

    @property
    def responses_remaining(self) -> int:
        with self._lock:
            return len(self._slots) - self._served

    def _next_slot(self) -> tuple[int, int, ModelResponse] | None:
        with self._lock:
            if self._served >= len(self._slots):
                return None
            slot = self._slots[self._served]
            self._served += 1
            return slot

    # -- recording ----------------------------------------------------------------------------

    def _record(
        self,
        handler: BaseHTTPRequestHandler,
        raw: bytes,
        slot: tuple[int, int, ModelResponse] | None,
    ) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._request_cond:
            self._requests.append(
                RecordedRequest(
                    index=len(self._requests),
                    method=handler.command,
                    path=handler.path,
                    headers={k.lower(): v for k, v in handler.headers.items()},
                    raw_body=raw,
                    body=body,
                    received_at=time.time(),
                    turn_index=slot[0] if slot else None,
                    response_index=slot[1] if slot else None,
                    response=slot[2] if slot else None,
                )
            )
            self._request_cond.notify_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        """All requests received so far, in arrival order (a snapshot copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """Requests that the script answered (one per model call)."""
        return [r for r in self.requests if r.turn_index is not None]

    @property
    def unexpected_requests(self) -> list[RecordedRequest]:
        """Requests to unknown paths or beyond the end of the script."""
        return [r for r in self.requests if r.turn_index is None]

    def requests_for_turn(self, turn_index: int) -> list[RecordedRequest]:
        return [r for r in self.requests if r.turn_index == turn_index]

    def find_tool_output(self, call_id: str) -> Any:
        """The output Codex reported for ``call_id`` in any later request, or None."""
        for request in self.requests:
            output = request.tool_output(call_id)
            if output is not None:
                return output
        return None

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._request_cond:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"mock model server: {len(self._requests)} of {count} requests arrived"
                    )
                self._request_cond.wait(remaining)
            return list(self._requests)

    def assert_script_consumed(self) -> None:
        """Fail if Codex made fewer or more model calls than scripted, or split turns otherwise.

        Turn alignment uses the Codex turn id in the request headers: all responses of one
        script turn must answer requests of one Codex turn, and each script turn a new one.
        """
        problems: list[str] = [f"mock server error:\n{err}" for err in self._handler_errors]
        if self.responses_remaining:
            problems.append(f"{self.responses_remaining} scripted responses were never requested")
        for request in self.unexpected_requests:
            problems.append(f"unexpected request #{request.index}: {request.method} {request.path}")
        turn_ids: dict[int, set[str | None]] = {}
        for request in self.model_requests:
            assert request.turn_index is not None
            turn_ids.setdefault(request.turn_index, set()).add(request.codex_turn_id)
        seen: dict[str | None, int] = {}
        for turn_index, ids in sorted(turn_ids.items()):
            if len(ids) > 1:
                problems.append(f"script turn {turn_index} answered several Codex turns: {ids}")
            for codex_turn in ids:
                if codex_turn is not None and codex_turn in seen:
                    problems.append(
                        f"script turns {seen[codex_turn]} and {turn_index} answered the same "
                        f"Codex turn {codex_turn}"
                    )
                seen[codex_turn] = turn_index
        if problems:
            raise AssertionError("mock script mismatch:\n  " + "\n  ".join(problems))
