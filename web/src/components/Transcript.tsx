import { useVirtualizer } from "@tanstack/react-virtual";
import { useQueries } from "convex/react";
import { ArrowDown } from "lucide-react";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { api, type Message } from "../api";
import { plural } from "../lib/format";
import { MessageView } from "./MessageView";

// A thread's transcript, however long. Only the rows near the viewport are in the page (a
// virtualized list), and only the blocks of BLOCK rows they fall in are subscribed, each a
// live `messages:list` query between two cursors: a 10,000-row thread costs what its visible
// part costs. The row count comes from `threads:get`, so the scrollbar is right from the start,
// and a new row appears as soon as the server sends it. Opening a thread shows its end (or the
// row a search hit named), and the view follows new rows while it is at the bottom.

const BLOCK = 100;
const ESTIMATE = 72;
const BOTTOM_SLACK = 48;

type Block = Message[];

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

export function Transcript({ threadId, count, at }: { threadId: string; count: number; at: number | null }) {
  const scroller = useRef<HTMLDivElement>(null);
  const cache = useRef(new Map<number, Block>());
  const stick = useRef(at === null);
  const [unseen, setUnseen] = useState(0);
  const seenCount = useRef(count);

  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => ESTIMATE,
    overscan: 6,
  });
  const items = virtualizer.getVirtualItems();
  const firstBlock = Math.floor((items[0]?.index ?? 0) / BLOCK);
  const lastBlock = Math.floor((items[items.length - 1]?.index ?? 0) / BLOCK);

  const queries = useMemo(() => {
    const wanted: Record<string, { query: typeof api.messagesList; args: ReturnType<typeof blockArgs> }> = {};
    if (count === 0) return wanted;
    for (let block = firstBlock; block <= lastBlock; block++) {
      wanted[String(block)] = { query: api.messagesList, args: blockArgs(threadId, block) };
    }
    return wanted;
  }, [threadId, count, firstBlock, lastBlock]);
  const results = useQueries(queries);
  for (const [key, value] of Object.entries(results)) {
    if (value && !(value instanceof Error)) cache.current.set(Number(key), value.page as Block);
  }
  const failed = Object.values(results).find((value): value is Error => value instanceof Error);

  const messageAt = (index: number): Message | undefined => {
    const block = cache.current.get(Math.floor(index / BLOCK));
    const candidate = block?.[index % BLOCK];
    return candidate && candidate.idx === index ? candidate : block?.find((m) => m.idx === index);
  };

  const atBottom = useCallback(() => {
    const el = scroller.current;
    return !el || el.scrollTop + el.clientHeight >= el.scrollHeight - BOTTOM_SLACK;
  }, []);

  const toEnd = useCallback(() => {
    if (count > 0) virtualizer.scrollToIndex(count - 1, { align: "end" });
  }, [count, virtualizer]);

  // Where a thread opens: at its end, or centred on the row a search hit named.
  useLayoutEffect(() => {
    if (at !== null && at < count) {
      stick.current = false;
      virtualizer.scrollToIndex(at, { align: "center" });
    } else {
      stick.current = true;
      toEnd();
    }
    // Only when the thread or the target changes; later growth is handled below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [threadId, at]);

  // Follow new rows (and rows that grow as they load) while the view is at the bottom.
  const loadedKey = Object.entries(results)
    .map(([key, value]) => `${key}:${value && !(value instanceof Error) ? value.page.length : "-"}`)
    .join(",");
  useEffect(() => {
    if (stick.current) {
      toEnd();
      seenCount.current = count;
      setUnseen(0);
    } else if (count > seenCount.current) {
      setUnseen(count - seenCount.current);
    }
  }, [count, loadedKey, toEnd]);

  const onScroll = () => {
    stick.current = atBottom();
    if (stick.current) {
      seenCount.current = count;
      if (unseen) setUnseen(0);
    }
  };

  return (
    <div className="transcript" ref={scroller} onScroll={onScroll} data-testid="transcript">
      {count === 0 ? <p className="empty transcript-empty">No messages yet.</p> : null}
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
              className={`row${message?.idx === at ? " row--target" : ""}`}
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
