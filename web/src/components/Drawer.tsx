import { useEffect, useRef } from "react";
import { History } from "./History";

/** The history drawer: a column beside the page on wide screens, a sheet over it on phones. */
export function Drawer({ open, onClose }: { open: boolean; onClose: () => void }) {
  const panel = useRef<HTMLElement>(null);

  // As a sheet, focus moves into it when it opens (and the page behind is inert).
  useEffect(() => {
    if (open) panel.current?.querySelector<HTMLElement>("select, a, button")?.focus();
  }, [open]);

  return (
    <>
      <div
        className={`scrim${open ? " scrim--open" : ""}`}
        aria-hidden
        onClick={onClose}
        data-testid="drawer-scrim"
      />
      <aside
        id="history"
        ref={panel}
        className={`drawer${open ? " drawer--open" : ""}`}
        aria-label="History"
        data-testid="drawer"
      >
        <History />
      </aside>
    </>
  );
}
