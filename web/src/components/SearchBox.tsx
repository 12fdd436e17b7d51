import { useQuery } from "convex/react";
import { Search } from "lucide-react";
import { useEffect, useId, useRef, useState } from "react";
import { useLocation } from "wouter";
import { api, type ThreadHit } from "../api";
import { threadTitle } from "../lib/format";
import { useDebounced } from "../lib/useDebounced";
import { Snippet } from "./Snippet";

const SUGGESTIONS = 6;

export function hitHref(hit: ThreadHit): string {
  const best = hit.hits[0];
  return best ? `/t/${hit.threadId}?at=${best.idx}` : `/t/${hit.threadId}`;
}

/** The header's search: results as you type (the best threads, each at its best hit); Enter
 * opens the full search page. A combobox with a listbox of results, driven by arrow keys. */
export function SearchBox() {
  const [, navigate] = useLocation();
  const [text, setText] = useState("");
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const box = useRef<HTMLDivElement>(null);
  const listId = useId();
  const q = useDebounced(text.trim(), 120);
  const hits = useQuery(api.searchThreads, q ? { q, limit: SUGGESTIONS } : "skip");
  const shown = open && q.length > 0;

  useEffect(() => setActive(-1), [hits]);
  useEffect(() => {
    const close = (event: MouseEvent) => {
      if (!box.current?.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", close);
    return () => document.removeEventListener("mousedown", close);
  }, []);

  const go = (href: string) => {
    setOpen(false);
    (document.activeElement as HTMLElement | null)?.blur();
    navigate(href);
  };

  return (
    <div className="searchbox" ref={box} role="search">
      <Search size={15} className="searchbox-icon" aria-hidden />
      <input
        id="search-input"
        className="searchbox-input"
        type="search"
        placeholder="Search threads"
        aria-label="Search threads"
        autoComplete="off"
        spellCheck={false}
        role="combobox"
        aria-expanded={shown}
        aria-controls={listId}
        aria-activedescendant={shown && active >= 0 ? `${listId}-${active}` : undefined}
        value={text}
        onChange={(event) => {
          setText(event.target.value);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onKeyDown={(event) => {
          const count = hits?.length ?? 0;
          if (event.key === "ArrowDown" && count) {
            event.preventDefault();
            setActive((i) => (i + 1) % count);
          } else if (event.key === "ArrowUp" && count) {
            event.preventDefault();
            setActive((i) => (i <= 0 ? count - 1 : i - 1));
          } else if (event.key === "Enter") {
            event.preventDefault();
            if (active >= 0 && hits?.[active]) go(hitHref(hits[active]));
            else if (text.trim()) go(`/search?q=${encodeURIComponent(text.trim())}`);
          } else if (event.key === "Escape") {
            if (open && text) {
              event.stopPropagation();
              setOpen(false);
            } else {
              (event.target as HTMLInputElement).blur();
            }
          }
        }}
      />
      <kbd className="searchbox-key" aria-hidden>
        /
      </kbd>
      {shown ? (
        <div className="popover searchbox-results">
          {hits === undefined ? <p className="searchbox-note">Searching…</p> : null}
          {hits && hits.length === 0 ? <p className="searchbox-note">No matches.</p> : null}
          <ul id={listId} role="listbox" aria-label="Matching threads">
            {hits?.map((hit, i) => (
              <li
                key={hit.threadId}
                id={`${listId}-${i}`}
                role="option"
                aria-selected={i === active}
                className="searchbox-hit"
                data-thread-id={hit.threadId}
                onMouseDown={(event) => event.preventDefault()}
                onClick={() => go(hitHref(hit))}
                onMouseEnter={() => setActive(i)}
              >
                <div className="searchbox-hit-title">{threadTitle({ id: hit.threadId, title: hit.title })}</div>
                {hit.hits[0] ? (
                  <div className="searchbox-hit-snippet">
                    <Snippet text={hit.hits[0].snippet} />
                  </div>
                ) : null}
              </li>
            ))}
          </ul>
          <button type="button" className="searchbox-all" onMouseDown={(e) => e.preventDefault()} onClick={() => go(`/search?q=${encodeURIComponent(q)}`)}>
            All results for “{q}”
          </button>
        </div>
      ) : null}
    </div>
  );
}
