"""The Model Context Protocol face of sessionbase: tools for coding agents over the same
queries as the live functions, served on stdio (``sessionbase mcp``) and at ``/mcp`` of
``serve`` (Streamable HTTP).

``tools`` and ``render`` are plain code over a ``Store``; ``server`` and ``http`` hold the
official SDK, which is only imported where MCP is spoken.
"""
