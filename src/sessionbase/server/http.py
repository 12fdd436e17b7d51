"""HTTP routes: Convex's ``/api/query|mutation|action`` and plain JSON with an OpenAPI document.

Convex HTTP (what ``ConvexHttpClient`` speaks): ``POST {path, args: [obj], format}`` →
``{status: "success", value, logLines}``, or HTTP 560 with ``{status: "error", errorMessage}``
for a function's own failure. Arguments the function refuses are a 400 with the same shape.

Plain JSON for scripts and curl: ``POST /v1/query/<path>`` (or GET with ``?args=<json>``) and
``POST /v1/mutation/<path>`` take the arguments object itself and answer with the value itself.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionbase.errors import AuthError, FunctionError, ScopeError, SessionbaseError
from sessionbase.live.engine import Engine
from sessionbase.live.registry import Function
from sessionbase.protocol.codec import CodecError, from_convex, to_convex
from sessionbase.protocol.messages import MessageError, canonical_path
from sessionbase.server.access import declare, identity_of
from sessionbase.server.errors import convex_refusal, http_error


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def _json_body(request: Request) -> Any:
    """The request's JSON; its size and content type were checked by ``RequestGuard``."""
    body = await request.body()
    if not body:
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FunctionError(f"request body is not JSON: {exc}") from None


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _call(request: Request, kind: str, path: str, args: Any) -> Any:
    """Run a query or mutation for an HTTP route as the caller the guard found; there are no
    actions."""
    engine, identity = _engine(request), identity_of(request.scope)
    if kind == "query":
        return await engine.query(path, args, identity=identity)
    if kind == "mutation":
        value, _ = await engine.mutation(path, args, identity=identity)
        return value
    raise FunctionError(f"unknown function kind {kind!r}", status=404)


def convex_routes() -> list[Route]:
    async def call(request: Request, kind: str) -> Response:
        try:
            body = await _json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("path"), str):
                raise FunctionError("body must be {path, args}")
            args = body.get("args", [{}])
            if isinstance(args, list):
                if len(args) != 1:
                    raise FunctionError("args must be a one-element array")
                args = args[0]
            try:
                args = from_convex(args)
            except CodecError as exc:
                raise FunctionError(str(exc)) from None
            try:
                path = canonical_path(body["path"])
            except MessageError as exc:
                raise FunctionError(str(exc)) from None
            if kind == "action":
                raise FunctionError(f"no action named {path!r}", status=404)
            value = await _call(request, kind, path, args)
        except AuthError as exc:
            # As Convex answers a bad or missing identity: 401 (403 without the scope).
            status = 403 if isinstance(exc, ScopeError) else 401
            return OrjsonResponse(convex_refusal(status, "", str(exc)), status_code=status)
        except FunctionError as exc:
            status = exc.status if exc.status != 404 else 560
            return OrjsonResponse(
                {"status": "error", "errorMessage": str(exc), "logLines": []}, status_code=status
            )
        except SessionbaseError as exc:
            # The server's own failure (the database is unavailable): the status says so,
            # and the body keeps Convex's shape for its clients.
            status, _ = http_error(exc)
            return OrjsonResponse(
                {"status": "error", "errorMessage": str(exc), "logLines": []},
                status_code=560 if status < 500 else status,
            )
        value = to_convex(value, floats=True)  # as Convex: the PyPI HTTP client wants 2.0
        return OrjsonResponse({"status": "success", "value": value, "logLines": []})

    async def query(request: Request) -> Response:
        return await call(request, "query")

    async def mutation(request: Request) -> Response:
        return await call(request, "mutation")

    async def action(request: Request) -> Response:
        return await call(request, "action")

    return [
        declare(Route("/api/query", query, methods=["POST"]), "function"),
        declare(Route("/api/mutation", mutation, methods=["POST"]), "function"),
        declare(Route("/api/action", action, methods=["POST"]), "function"),
    ]


def json_routes() -> list[Route]:
    async def run(request: Request) -> Response:
        kind = request.path_params["kind"]
        path = request.path_params["path"]
        try:
            if request.method == "GET":
                if kind != "query":
                    raise FunctionError("mutations need POST", status=405)
                raw = request.query_params.get("args")
                args = orjson.loads(raw) if raw else {}
            else:
                args = await _json_body(request)
            value = await _call(request, kind, path, args)
        except orjson.JSONDecodeError:
            status, body = http_error(FunctionError("args is not valid JSON"))
            return OrjsonResponse(body, status_code=status)
        except SessionbaseError as exc:
            status, body = http_error(exc)
            return OrjsonResponse(body, status_code=status)
        return OrjsonResponse(value)

    async def openapi(request: Request) -> Response:
        return OrjsonResponse(openapi_document(_engine(request)))

    return [
        declare(Route("/v1/{kind:str}/{path:str}", run, methods=["GET", "POST"]), "function"),
        declare(Route("/openapi.json", openapi, methods=["GET"]), "read"),
    ]


def openapi_document(engine: Engine) -> dict[str, Any]:
    """OpenAPI 3.1 for the plain JSON routes, from the registry's argument models."""
    paths: dict[str, Any] = {}
    for fn in engine.functions:
        paths[f"/v1/{fn.kind}/{fn.path}"] = {"post": _operation(fn)}
    error = {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}}}}}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "sessionbase", "version": "1"},
        "paths": paths,
        "components": {"schemas": {"Error": error}},
    }


def _operation(fn: Function) -> dict[str, Any]:
    scope_note = f"Needs the `{fn.scope}` scope."
    schema = fn.args.model_json_schema(by_alias=True)
    error_ref = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    }
    return {
        "operationId": fn.path.replace(":", "_"),
        "summary": fn.doc.splitlines()[0] if fn.doc else fn.path,
        "description": f"{fn.doc}\n\n{scope_note}" if fn.doc else scope_note,
        "x-scope": fn.scope,
        "requestBody": {"required": False, "content": {"application/json": {"schema": schema}}},
        "responses": {
            "200": {"description": "the function's result", "content": {"application/json": {}}},
            "400": {"description": "invalid arguments", **error_ref},
            "401": {"description": "no valid token", **error_ref},
            "403": {"description": "the token lacks the scope", **error_ref},
            "404": {"description": "unknown function or record", **error_ref},
        },
    }
