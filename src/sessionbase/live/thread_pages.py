"""Pages of a newest-first thread list, with Convex's cursor semantics.

Threads move: a thread that gets a new message jumps to the top, and new threads appear
there. A page that simply took "the first n" again on every re-run would push its last thread
off its end and into nobody's page. So, as Convex does with its query journal, a page keeps
the end it had on its first run: the journal records it, the engine hands it back on every
re-run, and the client re-sends it after a reconnect. A page can then grow (threads moving in
from below) or shrink, but the pages together always cover the whole list exactly once. A page
that grows well past its size offers a ``splitCursor``, and the client splits it in two.

A cursor names a place in the order ``updated_at DESC, id``: ``"<updated_at>|<id>"`` (an
empty time for threads that have none). ``"end"`` is past the last thread.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sessionbase.errors import FunctionError
from sessionbase.live.context import QueryContext
from sessionbase.store.base import ThreadFilter, ThreadKey
from sessionbase.store.rows import ThreadRow

END = "end"
MAX_BOUNDED_PAGE = 5000  # a pinned page that outgrew this is cut (its client will split it)


def encode_cursor(thread: ThreadRow) -> str:
    updated = thread["updated_at"]
    return f"{'' if updated is None else int(updated)}|{thread['id']}"


def decode_cursor(cursor: str) -> ThreadKey:
    """A cursor's place in the order; a malformed one is the client's InvalidCursor (the
    Convex client starts the list over when it sees that word)."""
    updated, sep, thread_id = cursor.partition("|")
    if not sep or not thread_id or not (updated == "" or updated.isdigit()):
        raise FunctionError(f"InvalidCursor: {cursor!r} is not a place in this thread list")
    return (int(updated) if updated else None, thread_id)


def thread_page(
    ctx: QueryContext, flt: ThreadFilter, cursor: str | None, end_cursor: str | None, size: int
) -> dict[str, Any]:
    """One page: the threads after ``cursor`` up to ``end_cursor`` (or the journal's end), or
    the first ``size`` of them on a page's first run. Rows keep their store shape."""
    after = None if cursor is None else decode_cursor(cursor)
    end = end_cursor or ctx.journal
    if end is None:
        rows = ctx.threads(replace(flt, after=after, limit=size + 1))
        more = len(rows) > size
        rows = rows[:size]
        end = encode_cursor(rows[-1]) if more else END
        ctx.journal = end
        return {"page": rows, "isDone": not more, "continueCursor": end}
    until = None if end == END else decode_cursor(end)
    rows = ctx.threads(replace(flt, after=after, until=until, limit=MAX_BOUNDED_PAGE + 1))
    ctx.journal = end
    if len(rows) > MAX_BOUNDED_PAGE:
        rows = rows[:MAX_BOUNDED_PAGE]
        end = encode_cursor(rows[-1])
        ctx.journal = end
    done = end == END or not ctx.threads(replace(flt, after=decode_cursor(end), limit=1))
    result: dict[str, Any] = {"page": rows, "isDone": done, "continueCursor": end}
    if len(rows) > 2 * size:
        result["splitCursor"] = encode_cursor(rows[len(rows) // 2 - 1])
        result["pageStatus"] = "SplitRecommended"
    return result
