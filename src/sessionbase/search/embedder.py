"""Text → vectors. The bundled static model by default; any OpenAI-compatible endpoint if asked.

Both return float32 rows of unit length, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sessionbase.errors import ConfigError, SessionbaseError

BUNDLED_MODEL = Path(__file__).parent / "models" / "minilm-m2v-256"
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    name: str
    """Identifies the vector space: vectors of different names are never mixed."""

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length float32 row per text; raises SessionbaseError on failure."""
        ...


def _normalized(matrix: Any) -> Vectors:
    vectors = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: Vectors = vectors / norms
    return unit


BUNDLED_MODEL_NAME = "minilm-m2v-256"
EMBED_CHARS = 800


class LocalEmbedder:
    """The bundled Model2Vec model, loaded on first use (about a second), thread-safe.

    It embeds the first ``max_chars`` characters of a text (``EMBED_CHARS``). A static model
    averages its token vectors, so a long text's later tokens barely move the mean, while the
    tokenizer's time grows with the whole text (two thirds of the embedding time). Measured on
    the search benchmark's units (1,245 characters on average, cut at 2,000 when stored), 800
    characters embed 2.0× as many units per CPU-second as the whole text (1,778 against 883),
    with vectors at cosine 0.988 to the whole text's. Recall@10 on the evaluation set
    (``tests/data/search_eval.json``) is the same for any cut from 300 characters up, and how
    often a unit's 10 nearest neighbours agree with those of all-MiniLM-L6-v2 (the model this
    one is distilled from, which reads 256 tokens, about 1,000 characters here) peaks from 800
    to 1,000 characters (0.17, 0.15; whole text 0.12, 600 characters 0.13, 400 0.10): 800 is
    the shortest cut at that peak.

    The cut is part of ``name``: vectors made with another cut live in another vector store
    and ANN file, so changing it re-embeds everything instead of mixing two vector spaces.
    """

    name = f"{BUNDLED_MODEL_NAME}-c{EMBED_CHARS}"  # with the default cut

    def __init__(self, path: Path = BUNDLED_MODEL, max_chars: int = EMBED_CHARS) -> None:
        self.path = path
        self.max_chars = max_chars
        self.name = f"{BUNDLED_MODEL_NAME}-c{max_chars}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from model2vec import StaticModel

                self._model = StaticModel.from_pretrained(str(self.path))
            return self._model

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 256), dtype=np.float32)
        cut = [text[: self.max_chars] for text in texts]
        return _normalized(self._load().encode(cut, show_progress_bar=False))


class OpenAIEmbedder:
    """Any ``/v1/embeddings`` endpoint (OpenAI, Ollama, LM Studio, vLLM…)."""

    def __init__(self, url: str, model: str, api_key: str | None = None) -> None:
        if not url or not model:
            raise ConfigError(
                "the openai embedding provider needs embedding_url and embedding_model"
            )
        self.url = url.rstrip("/") + (
            "" if url.rstrip("/").endswith("/embeddings") else "/embeddings"
        )
        self.model = model
        self.api_key = api_key
        self.name = f"openai:{model}"

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        body = json.dumps({"model": self.model, "input": texts}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SessionbaseError(f"embedding endpoint {self.url} failed: {exc}") from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise SessionbaseError(f"embedding endpoint {self.url} failed: {exc}") from exc
        rows = sorted(payload.get("data", []), key=lambda d: d.get("index", 0))
        if len(rows) != len(texts):
            raise SessionbaseError(f"embedding endpoint {self.url} returned {len(rows)} vectors")
        return _normalized([row["embedding"] for row in rows])
