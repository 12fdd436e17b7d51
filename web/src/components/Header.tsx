import { Menu, X } from "lucide-react";
import { Link } from "wouter";
import { ConnectionBanner } from "./ConnectionBanner";
import { StatusPill } from "./StatusPill";

export function Header({
  drawerOpen,
  onToggleDrawer,
}: {
  drawerOpen: boolean;
  onToggleDrawer: () => void;
}) {
  return (
    <header className="header">
      <button
        type="button"
        className="icon-button menu-button"
        aria-label={drawerOpen ? "Close history" : "Open history"}
        aria-expanded={drawerOpen}
        aria-controls="history"
        onClick={onToggleDrawer}
      >
        {drawerOpen ? <X size={20} aria-hidden /> : <Menu size={20} aria-hidden />}
      </button>
      <Link href="/" className="brand" aria-label="sessionbase home">
        <svg viewBox="0 0 32 32" width="22" height="22" aria-hidden>
          <rect width="32" height="32" rx="7" fill="var(--accent)" />
          <path
            d="M9 11.5h14M9 16h10M9 20.5h12"
            stroke="var(--accent-contrast)"
            strokeWidth="2.6"
            strokeLinecap="round"
          />
        </svg>
        <span className="brand-name">sessionbase</span>
      </Link>
      <div className="header-spacer" />
      <StatusPill />
      <ConnectionBanner />
    </header>
  );
}
