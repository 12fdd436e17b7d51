// Small formatting helpers shared by the pages.

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "narrow" });
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const SHORT_DATE = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const LONG_DATE = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const NUMBER = new Intl.NumberFormat();
const COMPACT = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/** "5m", "3h", "yesterday", then a date: how long ago, as a list wants it. */
export function ago(ms: number | null | undefined, now: number = Date.now()): string {
  if (!ms) return "";
  const seconds = Math.round((ms - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return "now";
  if (abs < 3600) return RELATIVE.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return RELATIVE.format(Math.round(seconds / 3600), "hour");
  if (abs < 7 * 86400) return RELATIVE.format(Math.round(seconds / 86400), "day");
  const then = new Date(ms);
  return then.getFullYear() === new Date(now).getFullYear()
    ? SHORT_DATE.format(then)
    : LONG_DATE.format(then);
}

export function dateTime(ms: number | null | undefined): string {
  return ms ? DATE_TIME.format(new Date(ms)) : "—";
}

export function isoTime(ms: number | null | undefined): string | undefined {
  return ms ? new Date(ms).toISOString() : undefined;
}

export function count(n: number | null | undefined): string {
  return NUMBER.format(n ?? 0);
}

export function compact(n: number | null | undefined): string {
  return COMPACT.format(n ?? 0);
}

/** "1 message", "2 messages". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

export function bytes(n: number | null | undefined): string {
  const value = n ?? 0;
  if (value < 1024) return `${value} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled.toFixed(scaled < 10 ? 1 : 0)} ${units[unit]}`;
}

export function duration(ms: number | null | undefined): string {
  if (ms == null) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s % 60);
  if (m < 60) return rest ? `${m}m ${rest}s` : `${m}m`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** The last path segments of a directory, with ~ for a home directory. */
export function shortPath(path: string | null | undefined, keep = 2): string {
  if (!path) return "";
  const home = path.replace(/^\/(?:Users|home)\/[^/]+/, "~");
  const parts = home.split("/").filter(Boolean);
  if (parts.length <= keep) return home;
  return `…/${parts.slice(-keep).join("/")}`;
}

export function threadTitle(t: { title: string | null; id: string }): string {
  const title = t.title?.trim();
  return title ? title : `Untitled ${t.id.slice(0, 8)}`;
}

/** Human names for Codex's `source` values. */
export function sourceLabel(source: string | null | undefined): string {
  switch (source) {
    case "cli":
      return "CLI";
    case "vscode":
      return "IDE";
    case "exec":
      return "exec";
    case "mcp":
      return "MCP";
    case "subagent":
      return "sub-agent";
    default:
      return source ?? "unknown";
  }
}
