"""The OpenAI-compatible embedding provider against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from sessionbase import config
from sessionbase.errors import ConfigError, SessionbaseError
from sessionbase.search import embedder_for
from sessionbase.search.embedder import OpenAIEmbedder


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b - 128.0 for b in digest[:8]]


class _Embeddings(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Embeddings.seen.append({"path": self.path, "body": body,
                                 "auth": self.headers.get("Authorization")})  # fmt: skip
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            return
        data = [{"index": i, "embedding": _vector(t)} for i, t in enumerate(body["input"])]
        payload = json.dumps({"data": list(reversed(data))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Embeddings.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_vectors_come_back_in_input_order_and_normalized(endpoint: str) -> None:
    embedder = OpenAIEmbedder(endpoint, "tiny", api_key="secret")
    vectors = embedder.embed(["alpha", "beta"])
    assert vectors.shape == (2, 8)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    expected = np.asarray(_vector("alpha"), dtype=np.float32)
    assert np.allclose(vectors[0], expected / np.linalg.norm(expected))
    (request,) = _Embeddings.seen
    assert request["path"] == "/v1/embeddings"
    assert request["body"] == {"model": "tiny", "input": ["alpha", "beta"]}
    assert request["auth"] == "Bearer secret"
    assert embedder.name == "openai:tiny"


def test_endpoint_failure_is_a_clear_error(endpoint: str) -> None:
    with pytest.raises(SessionbaseError, match="embedding endpoint .* failed"):
        OpenAIEmbedder(endpoint, "broken").embed(["x"])


def test_settings_choose_the_provider(endpoint: str, tmp_path: Any) -> None:
    settings = config.load(environ={"SESSIONBASE_EMBEDDING_PROVIDER": "openai",
                                    "SESSIONBASE_EMBEDDING_URL": endpoint,
                                    "SESSIONBASE_EMBEDDING_MODEL": "tiny"},
                           overrides={"data_dir": tmp_path})  # fmt: skip
    assert embedder_for(settings).name == "openai:tiny"
    missing = config.load(environ={"SESSIONBASE_EMBEDDING_PROVIDER": "openai"},
                          overrides={"data_dir": tmp_path})  # fmt: skip
    with pytest.raises(ConfigError, match="embedding_url and embedding_model"):
        embedder_for(missing)
    unknown = config.load(environ={"SESSIONBASE_EMBEDDING_PROVIDER": "nope"},
                          overrides={"data_dir": tmp_path})  # fmt: skip
    with pytest.raises(ConfigError, match="unknown embedding_provider"):
        embedder_for(unknown)
