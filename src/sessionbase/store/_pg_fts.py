"""Full-text search on PostgreSQL with the same tokens as SQLite (``store.tokens``).

PostgreSQL's own parsers split ``flaky_websocket_test`` and ``src/app/cli.py`` differently from
ours, so the index is not built by ``to_tsvector``: each text becomes a ``tsvector`` literal of
our own tokens, the whole tokens (as FTS5's ``text`` column holds them) with weight A and their
parts (FTS5's ``parts`` column) with weight B, at positions far enough apart that a phrase never
runs from one into the other. A query term becomes the same alternatives the FTS5 compiler
makes: the whole tokens as a phrase of any weight, or the parts as a phrase of weight B.
"""

from __future__ import annotations

import functools
import unicodedata

from sessionbase.store.textquery import MAX_TERM_CHARS, Term, TextQuery
from sessionbase.store.tokens import CJK, WORD, cjk_bigrams, is_emoji, parts, pieces

MAX_POSITION = 16383  # PostgreSQL's largest position; later tokens share it
PARTS_FROM = 8192  # parts start here, past any whole token a phrase could chain from
MAX_LEXEME_BYTES = 2046
MAX_TOKENS = 20_000  # per column: keeps a huge tool output well under the 1 MB tsvector limit
RANK_WEIGHTS = "{0, 0, 0.6, 1.0}"  # D, C, B (parts), A (whole tokens): FTS5's 1.0 / 0.6


@functools.lru_cache(maxsize=1 << 16)
def _fold(token: str) -> str:
    """Lower case without diacritics, as FTS5's unicode61 (remove_diacritics 2) folds."""
    lowered = token.lower()
    if lowered.isascii():
        return lowered
    split = unicodedata.normalize("NFD", lowered)
    return unicodedata.normalize("NFC", "".join(c for c in split if not unicodedata.combining(c)))


def _quote(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def _usable(token: str) -> bool:
    return bool(token) and len(token.encode()) <= MAX_LEXEME_BYTES


def whole_tokens(text: str) -> list[str]:
    """The tokens FTS5's ``text`` column holds for a text."""
    if text.isascii():  # folding ASCII is lower(), which keeps every token boundary
        return WORD.findall(text.lower())
    return [_fold(t) for t in WORD.findall(text)]


def _part_tokens(text: str) -> list[str]:
    """The tokens of FTS5's ``parts`` column, folded as its tokenizer folds them."""
    found = parts(text).split()
    return found if text.isascii() else [_fold(t) for t in found]  # ASCII parts are lower


def _entries(tokens: list[str], first: int, weight: str) -> list[str]:
    """``'token':position weight`` for each token, positions from ``first``, the ones past
    MAX_POSITION sharing it. Tokens never need quoting: ``WORD`` and the parts hold no quote
    or backslash."""
    tokens = tokens[:MAX_TOKENS]
    fits = MAX_POSITION - first + 1
    out = [f"'{t}':{n}{weight}" for n, t in enumerate(tokens[:fits], first)]
    out += [f"'{t}':{MAX_POSITION}{weight}" for t in tokens[fits:]]
    if any(not t or len(t) > MAX_LEXEME_BYTES // 4 for t in tokens):  # rare: look closer
        out = [e for e, t in zip(out, tokens, strict=True) if _usable(t)]
    return out


def tsvector(text: str) -> str:
    """The ``tsvector`` literal indexing ``text``: whole tokens (A), then parts (B)."""
    whole = _entries(whole_tokens(text), 1, "A")
    return " ".join(whole + _entries(_part_tokens(text), PARTS_FROM, "B"))


def tsquery(query: TextQuery) -> str | None:
    """The ``tsquery`` literal for ``query``; None if it has no terms."""
    clauses = [clause for term in query.terms if (clause := _term(term)) is not None]
    return " & ".join(clauses) if clauses else None


def _phrase(tokens: list[str], weight: str, prefix: bool) -> str:
    last = len(tokens) - 1
    return " <-> ".join(
        _quote(t) + (":" if weight or (prefix and n == last) else "")
        + ("*" if prefix and n == last else "") + weight
        for n, t in enumerate(tokens)
    )  # fmt: skip


def _term(term: Term) -> str | None:
    """One term: its whole tokens in any column, or its parts as a phrase in ``parts``."""
    text = term.text[:MAX_TERM_CHARS]
    emoji = [f"em{ord(c):x}" for c in text if is_emoji(c)]
    cjk = CJK.findall(text)
    if cjk:
        bigrams = [_fold(b) for run in cjk for b in cjk_bigrams(run)]
        return "(" + _phrase(bigrams, "B", term.prefix) + ")"
    words = WORD.findall(text)
    if not words and not emoji:
        return None
    options = []
    whole = [_fold(w) for w in words]
    if whole:
        options.append(_phrase(whole, "", term.prefix))
        made_of = [p for w in words for p in (pieces(w) or [w.lower()])]
        joined = " ".join(words)
        piece_phrase = [p for p in made_of if "." not in p or "/" in joined]
        if piece_phrase and " ".join(piece_phrase) != " ".join(whole):
            options.append(_phrase(piece_phrase, "B", term.prefix))
    if emoji:
        options.append(_phrase(emoji, "B", False))
    return "(" + " | ".join(f"({o})" for o in options) + ")"
