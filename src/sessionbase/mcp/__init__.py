"""The Model Context Protocol face of sessionbase: tools for coding agents over the same
queries as the live functions, served on stdio (``sessionbase mcp``) and at ``/mcp`` of
``serve`` (Streamable HTTP).

``tools``, ``arguments`` and ``render`` are plain code over a ``Store``. Only ``server`` holds
the official SDK, which ``http`` loads on first use.
"""
