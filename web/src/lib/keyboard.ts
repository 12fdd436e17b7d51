import { useEffect, useRef } from "react";

// App-wide keys: `/` focuses search, `j`/`k` move through the history list, `Esc` closes
// whatever panel is open. Keys typed into a field are left alone (except Esc).

function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  const tag = target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
}

/** Move focus (and the open thread) to the next or previous thread in the history list. */
function step(delta: 1 | -1) {
  const links = Array.from(document.querySelectorAll<HTMLAnchorElement>("a[data-thread-link]"));
  if (links.length === 0) return;
  const active = document.activeElement;
  let index = links.findIndex((a) => a === active);
  if (index < 0) index = links.findIndex((a) => a.getAttribute("aria-current") === "page");
  const next = links[Math.min(links.length - 1, Math.max(0, index < 0 ? 0 : index + delta))];
  next.focus();
  next.scrollIntoView({ block: "nearest" });
  next.click();
}

export function useKeyboard({ onEscape }: { onEscape: () => void }) {
  const escape = useRef(onEscape);
  escape.current = onEscape;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey) return;
      if (event.key === "Escape") {
        escape.current();
        return;
      }
      if (typing(event.target)) return;
      if (event.key === "/") {
        // The search page's own box when it is open, else the header's.
        const search =
          document.getElementById("search-page-input") ?? document.getElementById("search-input");
        if (search) {
          event.preventDefault();
          search.focus();
        }
      } else if (event.key === "j") {
        step(1);
      } else if (event.key === "k") {
        step(-1);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}
