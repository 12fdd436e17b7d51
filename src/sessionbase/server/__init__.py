"""The network face of sessionbase: the ASGI app, sync WebSocket and HTTP API."""

from sessionbase.server.app import create_app

__all__ = ["create_app"]
