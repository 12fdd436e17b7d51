"""Code-aware tokens for full-text search, and safe FTS5 queries from anything a user types.

The FTS index has two columns. ``text`` is the message as written, tokenized by FTS5's
``unicode61`` with ``_ - . /`` kept inside tokens, so ``flaky_websocket_test``,
``src/app/cli.py`` and ``--verbose`` are findable whole. ``parts`` holds what those whole
tokens are made of, in order: ``flaky websocket test``, ``src app cli py cli.py``,
``verbose``; camelCase split (``getUserName`` → ``get user name``); words cut loose from
trailing punctuation (``done.`` → ``done``); CJK runs as overlapping bigrams; emoji as
``em<hex>`` tokens. A query term matches either column, so identifiers are found whole and
by part, and no user input can be an FTS syntax error: every term is quoted.
"""

from __future__ import annotations

import functools
import re
import unicodedata

TOKEN_CHARS = "_-./"
TOKENIZER = f"unicode61 remove_diacritics 2 tokenchars '{TOKEN_CHARS}'"
MAX_TERMS = 64
MAX_TERM_CHARS = 200

_WORD = re.compile(r"[\w\-./]+", re.UNICODE)
_SPLIT = re.compile(r"[_\-./]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def _is_emoji(char: str) -> bool:
    return unicodedata.category(char) == "So" and ord(char) > 0x2000


def _cjk_bigrams(run: str) -> list[str]:
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
    return _cached_pieces(token) if len(token) <= MAX_CACHED_TOKEN else tuple(_pieces(token))


@functools.lru_cache(maxsize=1 << 16)
def _cached_pieces(token: str) -> tuple[str, ...]:
    """Identifiers and paths repeat across messages: split each distinct one once."""
    return tuple(_pieces(token))


def _pieces(token: str) -> list[str]:
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
        cjk = _CJK.findall(token)
        if cjk:
            for run in cjk:
                out.extend(_cjk_bigrams(run))
            continue
        out.extend(_token_pieces(token))
    out.extend(f"em{ord(c):x}" for c in text if _is_emoji(c))
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


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _term_query(term: str, prefix: bool) -> str | None:
    """One user term as FTS5: the whole token in any column, or its parts as a phrase."""
    term = term[:MAX_TERM_CHARS]
    star = "*" if prefix else ""
    emoji = [f"em{ord(c):x}" for c in term if _is_emoji(c)]
    cjk = _CJK.findall(term)
    if cjk:
        bigrams = [b for run in cjk for b in _cjk_bigrams(run)]
        return f"parts : {_quote(' '.join(bigrams))}{star}"
    words = _WORD.findall(term)
    if not words and not emoji:
        return None
    options = []
    whole = " ".join(words)
    if whole:
        options.append(f"{_quote(whole)}{star}")
        pieces = [p for w in words for p in (_pieces(w) or [w.lower()])]
        piece_phrase = " ".join(p for p in pieces if "." not in p or "/" in whole)
        if piece_phrase and piece_phrase != whole.lower():
            options.append(f"parts : {_quote(piece_phrase)}{star}")
    if emoji:
        options.append(f"parts : {_quote(' '.join(emoji))}")
    return options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")"


def highlight_terms(user_query: str) -> list[str]:
    """What to mark in a text for this query: its words, their parts, CJK runs and emoji."""
    found: list[str] = []
    for word in _WORD.findall(user_query):
        found.extend(_CJK.findall(word) or [word, *_pieces(word)])
    found.extend(c for c in user_query if _is_emoji(c))
    return sorted({t for t in found if len(t) > 1 or _is_emoji(t) or _CJK.match(t)}, key=len,
                  reverse=True)  # fmt: skip


MIN_PREFIX_CHARS = 3


def _may_be_prefix(term: str) -> bool:
    """Whether a last bare term also matches as a prefix: from ``MIN_PREFIX_CHARS`` on, or
    any CJK (a lone character is found as the start of its bigrams). A one- or two-letter
    prefix matches a large share of all tokens and made such a query twice as slow."""
    return len(term) >= MIN_PREFIX_CHARS or bool(_CJK.search(term))


def prefix_term(user_query: str) -> str | None:
    """The term of ``user_query`` that ``fts_query`` matches as a prefix, if any."""
    terms = _terms(user_query)[:MAX_TERMS]
    if not terms or terms[-1][1] or not _may_be_prefix(terms[-1][0]):
        return None
    return terms[-1][0]


def _terms(user_query: str) -> list[tuple[str, bool]]:
    """(text, is_phrase) for each term of a query as typed."""
    terms: list[tuple[str, bool]] = []
    pieces = user_query.split('"')
    if len(pieces) % 2 == 0:  # unbalanced: drop the odd quote
        pieces = user_query.replace('"', " ").split('"')
    for i, piece in enumerate(pieces):
        if i % 2 == 1:
            if piece.strip():
                terms.append((piece.strip(), True))
        else:
            terms.extend((word, False) for word in piece.split())
    return terms


def fts_query(user_query: str, *, prefix_last: bool = True) -> str | None:
    """A safe FTS5 MATCH expression for what the user typed; None if nothing is searchable.

    Double quotes make phrases; an unbalanced quote is ignored. Every term must match (AND);
    the last bare term also matches as a prefix, for type-ahead, once it has a few characters
    (``prefix_term``).
    """
    terms = _terms(user_query)
    clauses = []
    for n, (term, phrase) in enumerate(terms[:MAX_TERMS]):
        is_last = n == min(len(terms), MAX_TERMS) - 1
        if phrase:
            clause = _term_query(term, False)  # the phrase whole, or as a run of parts
            if clause:
                clauses.append(clause)
            continue
        clause = _term_query(term, prefix_last and is_last and _may_be_prefix(term))
        if clause:
            clauses.append(clause)
    return " AND ".join(clauses) if clauses else None
