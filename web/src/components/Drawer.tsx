import { useEffect, useRef } from "react";
import { History } from "./History";

/** The history drawer: a column beside the page on wide screens, a sheet over it on phones. */
export function Drawer({ open, onClose }: { open: boolean; onClose: () => void }) {
  const panel = useRef<HTMLElement>(null);

  // As a sheet, focus moves into it when it opens, to the open thread if it lists it (the
  // page behind is inert meanwhile), once the sheet is shown.
  useEffect(() => {
    if (!open) return;
    const frame = requestAnimationFrame(() => {
      const list = panel.current;
      const target =
        list?.querySelector<HTMLElement>("a[aria-current=page]") ??
        list?.querySelector<HTMLElement>("a[data-thread-link], select");
      target?.focus({ preventScroll: false });
    });
    return () => cancelAnimationFrame(frame);
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
