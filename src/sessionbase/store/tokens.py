"""Code-aware tokens for full-text search, the same for every backend.

A full-text index has two columns. ``text`` is the message as written, split into whole
tokens that keep ``_ - . /`` inside them (case and diacritics folded), so
``flaky_websocket_test``, ``src/app/cli.py`` and ``--verbose`` are findable whole. ``parts``
holds what those whole tokens are made of, in order: ``flaky websocket test``,
``src app cli py cli.py``, ``verbose``; camelCase split (``getUserName`` → ``get user
name``); words cut loose from trailing punctuation (``done.`` → ``done``); CJK runs as
overlapping bigrams; emoji as ``em<hex>`` tokens. A query term matches either column, so
identifiers are found whole and by part (``store.textquery`` says how a query is read).
"""

from __future__ import annotations

import functools
import re
import unicodedata

TOKEN_CHARS = "_-./"

WORD = re.compile(r"[\w\-./]+", re.UNICODE)
_SPLIT = re.compile(r"[_\-./]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def is_emoji(char: str) -> bool:
    """An emoji, indexed as its own ``em<hex>`` token."""
    return unicodedata.category(char) == "So" and ord(char) > 0x2000


def cjk_bigrams(run: str) -> list[str]:
    """A CJK run as the overlapping pairs it is indexed as (a lone character stays whole)."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


_PLAIN = re.compile(r"(?:[a-z]+|[0-9]+)\Z")
# Whole tokens that can have parts: not a lowercase, Capitalized or UPPERCASE ASCII word and
# not a number. Most of any text is such words, and skipping them inside the regex engine
# (instead of looking at every token in Python) makes ``parts`` several times faster.
_MAY_HAVE_PARTS = re.compile(
    r"(?<![\w\-./])(?!(?:[A-Z]?[a-z]+|[A-Z]+|[0-9]+)(?![\w\-./]))[\w\-./]+", re.UNICODE
)


# Longer tokens (base64, hashes, minified code) rarely repeat and would make the caches big.
MAX_CACHED_TOKEN = 128


def _token_pieces(token: str) -> tuple[str, ...]:
    return _cached_pieces(token) if len(token) <= MAX_CACHED_TOKEN else tuple(pieces(token))


@functools.lru_cache(maxsize=1 << 16)
def _cached_pieces(token: str) -> tuple[str, ...]:
    """Identifiers and paths repeat across messages: split each distinct one once."""
    return tuple(pieces(token))


def pieces(token: str) -> list[str]:
    """What one whole token is made of (empty when it is a plain word)."""
    if _PLAIN.match(token):
        return []  # the common case, and the hot path of every insert
    out: list[str] = []
    plain = token.strip(TOKEN_CHARS)
    if plain != token and plain:
        out.append(plain.lower())
    segments = [s for s in _SPLIT.split(plain) if s]
    if len(segments) > 1 or any(_CAMEL.findall(s) != [s] for s in segments if s.isascii()):
        for segment in segments:
            words = _CAMEL.findall(segment) if segment.isascii() else [segment]
            out.extend(w.lower() for w in words if w)
        if "/" in plain:
            base = plain.rsplit("/", 1)[-1]
            if base and "." in base:
                out.append(base.lower())
    return out


def parts(text: str) -> str:
    """The ``parts`` column for a text (see the module docstring)."""
    return _ascii_parts(text) if text.isascii() else _unicode_parts(text)


def _unicode_parts(text: str) -> str:
    out: list[str] = []
    for token in _MAY_HAVE_PARTS.findall(text):
        cjk = CJK.findall(token)
        if cjk:
            for run in cjk:
                out.extend(cjk_bigrams(run))
            continue
        out.extend(_token_pieces(token))
    out.extend(f"em{ord(c):x}" for c in text if is_emoji(c))
    return " ".join(out)


# In ASCII text the whole tokens are the runs of these bytes, so a byte translation and a
# split find them all in C, and a dict of the tokens already seen answers most of them: the
# same result as ``_unicode_parts`` (no CJK or emoji can occur), in about half the time.
_ASCII_TOKEN_BYTES = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + TOKEN_CHARS.encode()
)
_ASCII_TOKENS_ONLY = bytes(c if c in _ASCII_TOKEN_BYTES else 0x20 for c in range(256))
_ASCII_SEEN_MAX = 1 << 17
_ascii_seen: dict[bytes, str] = {}  # whole token → its parts joined ("" for a plain word)


def _ascii_parts(text: str) -> str:
    tokens = text.encode("ascii").translate(_ASCII_TOKENS_ONLY).split()
    found = list(map(_ascii_seen.get, tokens))
    if None in found:
        if len(_ascii_seen) > _ASCII_SEEN_MAX:
            _ascii_seen.clear()
        for i, known in enumerate(found):
            if known is None:
                token = tokens[i]
                found[i] = joined = " ".join(_token_pieces(token.decode("ascii")))
                if len(token) <= MAX_CACHED_TOKEN:
                    _ascii_seen[token] = joined
    return " ".join(filter(None, found))
