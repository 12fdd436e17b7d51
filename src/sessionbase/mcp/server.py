"""The MCP server itself, on the official SDK's low-level ``Server``: the tools of
``mcp.tools`` listed with their schemas and called through a ``ToolRunner``.

A tool's refusal (bad arguments, an unknown thread) or failure is a result with ``isError``
set, which the model reads and can correct; only a call of a tool that does not exist is a
protocol error, as the specification has it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from typing import Any

from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from sessionbase.config import Settings
from sessionbase.mcp.runner import ToolRunner
from sessionbase.mcp.tools import TOOLS

NAME = "sessionbase"
HTTP_WORKERS = 2
"""Tool calls served at once over HTTP (each worker a thread with its own store)."""
INSTRUCTIONS = (
    "sessionbase holds every past Codex session on this machine (what was asked, answered,"
    " run and changed, in every project). Use search_sessions to recall how something was done"
    " or decided before, read_thread to read a session around a hit, recent_threads and"
    " list_projects to look around. Results are compact text with a size cap (max_chars);"
    " they say when more is available and how to get it."
)
READ_ONLY = types.ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def tool_list() -> list[types.Tool]:
    """Every tool as MCP describes it."""
    return [
        types.Tool(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=tool.input_schema(),
            annotations=READ_ONLY,
        )
        for tool in TOOLS.values()
    ]


def build_server(runner: ToolRunner) -> Server[Any]:
    """An MCP server whose tools run on ``runner``."""
    tools = tool_list()

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name not in TOOLS:
            known = ", ".join(TOOLS)
            raise MCPError(
                types.INVALID_PARAMS, f"unknown tool {params.name!r}: the tools are {known}"
            )
        answer = await runner.call(params.name, params.arguments)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=answer.text)], is_error=answer.is_error
        )

    return Server(
        NAME,
        version=package_version("sessionbase"),
        title="sessionbase: your past Codex sessions",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


@asynccontextmanager
async def tool_runner(settings: Settings, workers: int = 1) -> AsyncIterator[ToolRunner]:
    """A runner for the settings' database, its semantic search set up as they say (raises
    ConfigError for an unusable embedding setting); closed on exit."""
    from sessionbase.search import semantic_index

    semantic_index(settings)
    runner = ToolRunner(settings, workers)
    try:
        yield runner
    finally:
        runner.close()


async def serve_stdio(settings: Settings) -> None:
    """Serve MCP over stdin and stdout until the client closes them."""
    async with tool_runner(settings) as runner, stdio_server() as (read, write):
        server = build_server(runner)
        await server.run(read, write, server.create_initialization_options())


@asynccontextmanager
async def http_sessions(settings: Settings) -> AsyncIterator[StreamableHTTPSessionManager]:
    """The SDK's Streamable HTTP session manager for these settings, running until exit; its
    ``handle_request`` serves one HTTP request. Host, Origin, content type and body size are
    the app's request guard's to check (as for every route), so the SDK's own checks are off."""
    async with tool_runner(settings, workers=HTTP_WORKERS) as runner:
        manager = StreamableHTTPSessionManager(
            app=build_server(runner),
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        async with manager.run():
            yield manager
