import { useVirtualizer } from "@tanstack/react-virtual";
import { useQueries, useQuery } from "convex/react";
import { ArrowDown } from "lucide-react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, type Message } from "../api";
import { plural } from "../lib/format";
import { useDebounced } from "../lib/useDebounced";
import { MessageView } from "./MessageView";

// A thread's transcript, however long. Only the rows near the viewport are in the page (a
// virtualized list), and only what they show is subscribed: the newest TAIL rows (the
// `messages:tail` query, asked for at once, beside `threads:get`, so a thread opens at its end
// in one round trip), and, further up, the blocks of BLOCK rows the view falls in, each a live
// `messages:list` query between two cursors. A 10,000-row thread costs what its visible part
// costs. The view follows new rows while it is at the bottom.

const BLOCK = 100;
const TAIL = 100;
const ESTIMATE = 72;
const BOTTOM_SLACK = 48;
const SETTLE_MS = 60;

function blockArgs(threadId: string, block: number) {
  return {
    threadId,
    paginationOpts: {
      numItems: BLOCK,
      cursor: block === 0 ? null : String(block * BLOCK - 1),
      endCursor: String((block + 1) * BLOCK - 1),
    },
  };
}

type BlockQuery = { query: typeof api.messagesList; args: ReturnType<typeof blockArgs> };

export function Transcript({
  threadId,
  itemCount,
  at,
}: {
  threadId: string;
  itemCount: number | undefined;
  at: number | null;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const cache = useRef(new Map<number, Message[]>());
  const stick = useRef(at === null);
  const positioned = useRef(false);
  const [unseen, setUnseen] = useState(0);

  const tail = useQuery(api.messagesTail, { threadId, n: TAIL });
  const tailStart = tail?.length ? tail[0].idx : Number.POSITIVE_INFINITY;
  const count = Math.max(itemCount ?? 0, tail?.length ? tail[tail.length - 1].idx + 1 : 0);
  const seenCount = useRef(count);

  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => ESTIMATE,
    overscan: 6,
  });
  const items = virtualizer.getVirtualItems();
  const [placed, setPlaced] = useState(false);
  // The blocks in view, once the view has settled (not those a fast scroll flies past, nor
  // the top of the thread before it has been scrolled to its end).
  const span = useDebounced(
    placed ? `${items[0]?.index ?? 0}:${Math.min(items[items.length - 1]?.index ?? 0, tailStart - 1)}` : "",
    SETTLE_MS,
  );

  // Blocks for the rows in view that the tail does not hold.
  const queries = useMemo(() => {
    const wanted: Record<string, BlockQuery> = {};
    const [first, last] = span.split(":").map(Number);
    if (!span || count === 0 || first > last) return wanted;
    for (let block = Math.floor(first / BLOCK); block <= Math.floor(last / BLOCK); block++) {
      wanted[String(block)] = { query: api.messagesList, args: blockArgs(threadId, block) };
    }
    return wanted;
  }, [threadId, count, span]);
  const results = useQueries(queries);
  for (const [key, value] of Object.entries(results)) {
    if (value && !(value instanceof Error)) cache.current.set(Number(key), value.page as Message[]);
  }
  const failed = Object.values(results).find((value): value is Error => value instanceof Error);

  const messageAt = (index: number): Message | undefined => {
    if (tail && index >= tailStart) return tail[index - tailStart];
    const block = cache.current.get(Math.floor(index / BLOCK));
    const candidate = block?.[index % BLOCK];
    return candidate && candidate.idx === index ? candidate : block?.find((m) => m.idx === index);
  };

  const toEnd = useCallback(() => {
    if (count > 0) virtualizer.scrollToIndex(count - 1, { align: "end" });
  }, [count, virtualizer]);

  // Where a thread opens, once its length is known: at its end, or centred on the row a search
  // hit named. Later growth is followed below.
  useEffect(() => {
    positioned.current = false;
    setPlaced(false);
  }, [threadId, at]);
  useEffect(() => {
    if (positioned.current || count === 0) return;
    positioned.current = true;
    if (at !== null && at < count) {
      stick.current = false;
      virtualizer.scrollToIndex(at, { align: "center" });
    } else {
      stick.current = true;
      toEnd();
    }
    seenCount.current = count;
    setPlaced(true);
  }, [threadId, at, count, toEnd, virtualizer]);

  // Follow new rows (and rows that change height as they load) while the view is at the bottom.
  const loadedKey = `${tail?.length ?? "-"}:${tail?.[tail.length - 1]?.idx ?? "-"}|${Object.entries(results)
    .map(([key, value]) => `${key}:${value && !(value instanceof Error) ? value.page.length : "-"}`)
    .join(",")}`;
  useEffect(() => {
    if (!positioned.current) return;
    if (stick.current) {
      toEnd();
      seenCount.current = count;
      setUnseen(0);
    } else if (count > seenCount.current) {
      setUnseen(count - seenCount.current);
    }
  }, [count, loadedKey, toEnd]);

  const onScroll = () => {
    const el = scroller.current;
    stick.current = !el || el.scrollTop + el.clientHeight >= el.scrollHeight - BOTTOM_SLACK;
    if (stick.current) {
      seenCount.current = count;
      if (unseen) setUnseen(0);
    }
  };

  const empty = tail !== undefined && itemCount !== undefined && count === 0;
  return (
    <div className="transcript" ref={scroller} onScroll={onScroll} data-testid="transcript" data-count={count}>
      {empty ? <p className="empty transcript-empty">No messages yet.</p> : null}
      {failed ? (
        <p className="callout callout-bad" role="alert">
          Could not load messages: {failed.message}
        </p>
      ) : null}
      <div className="transcript-rows" role="list" aria-label="Transcript" style={{ height: virtualizer.getTotalSize() }}>
        {items.map((item) => {
          const message = messageAt(item.index);
          return (
            <div
              key={item.key}
              role="listitem"
              className={`row${message && message.idx === at ? " row--target" : ""}`}
              data-index={item.index}
              data-idx={message?.idx}
              data-kind={message?.kind}
              data-role={message?.role}
              ref={virtualizer.measureElement}
              style={{ transform: `translateY(${item.start}px)` }}
            >
              {message ? <MessageView message={message} /> : <div className="row-placeholder" aria-hidden />}
            </div>
          );
        })}
      </div>
      {unseen > 0 ? (
        <button
          type="button"
          className="jump-latest"
          onClick={() => {
            stick.current = true;
            toEnd();
          }}
        >
          <ArrowDown size={14} aria-hidden /> {plural(unseen, "new row")}
        </button>
      ) : null}
    </div>
  );
}
