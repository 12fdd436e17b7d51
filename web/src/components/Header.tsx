import { BookOpen, FolderGit2, Menu, MonitorSmartphone, Search, X } from "lucide-react";
import { Link, useRoute } from "wouter";
import { useAccess } from "../lib/access";
import { ConnectionBanner } from "./ConnectionBanner";
import { SearchBox } from "./SearchBox";
import { StatusPill } from "./StatusPill";

export function Header({
  drawerOpen,
  onToggleDrawer,
}: {
  drawerOpen: boolean;
  onToggleDrawer: () => void;
}) {
  const [access] = useAccess();
  return (
    <header className="header">
      <button
        type="button"
        className="icon-button menu-button"
        aria-label={drawerOpen ? "Close history" : "Open history"}
        aria-expanded={drawerOpen}
        aria-controls="history"
        onClick={onToggleDrawer}
        data-testid="menu"
      >
        {drawerOpen ? <X size={20} aria-hidden /> : <Menu size={20} aria-hidden />}
      </button>
      <Link href="/" className="brand" aria-label="sessionbase, start page">
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
      <SearchBox />
      <nav className="nav" aria-label="Pages">
        <NavLink href="/search" label="Search" icon={<Search size={17} aria-hidden />} phoneOnly />
        <NavLink href="/projects" label="Projects" icon={<FolderGit2 size={17} aria-hidden />} />
        <NavLink href="/skills" label="Skills" icon={<BookOpen size={17} aria-hidden />} />
        {access.has("admin") ? (
          <NavLink href="/devices" label="Devices" icon={<MonitorSmartphone size={17} aria-hidden />} />
        ) : null}
      </nav>
      <StatusPill />
      <ConnectionBanner />
    </header>
  );
}

function NavLink({
  href,
  label,
  icon,
  phoneOnly = false,
}: {
  href: string;
  label: string;
  icon: React.ReactNode;
  phoneOnly?: boolean;
}) {
  const [active] = useRoute(href);
  return (
    <Link
      href={href}
      className={`nav-link${phoneOnly ? " nav-link--phone" : ""}`}
      aria-current={active ? "page" : undefined}
      aria-label={label}
    >
      {icon}
      <span className="nav-label">{label}</span>
    </Link>
  );
}
