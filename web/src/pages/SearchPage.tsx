import { useQuery } from "convex/react";
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { api, type SearchArgs, type SearchMode } from "../api";
import { Snippet } from "../components/Snippet";
import { ago, dateTime, isoTime, plural, sourceLabel, threadTitle } from "../lib/format";
import { useProjects } from "../lib/projects";
import { useTitle } from "../lib/title";
import { useDebounced } from "../lib/useDebounced";

// Full search: the query and every filter live in the URL, so a search can be reloaded,
// shared and gone back to. Results are threads, best first, each with its best hits; a hit
// opens the thread scrolled to it.

const MODES: [SearchMode, string][] = [
  ["hybrid", "Hybrid"],
  ["text", "Exact words"],
  ["semantic", "Meaning"],
];
const KINDS = ["message", "reason", "cmd", "patch", "tool", "search", "plan", "error"];
const KIND_LABEL: Record<string, string> = {
  message: "messages",
  reason: "reasoning",
  cmd: "commands",
  patch: "patches",
  tool: "tool calls",
  search: "web searches",
  plan: "plans",
  error: "errors",
};
const SINCE: [string, string, number][] = [
  ["", "Any time", 0],
  ["1d", "Past day", 86_400_000],
  ["7d", "Past week", 7 * 86_400_000],
  ["30d", "Past month", 30 * 86_400_000],
  ["365d", "Past year", 365 * 86_400_000],
];
const HOUR = 3_600_000;

type Params = { q: string; mode: SearchMode; project: string; role: string; kind: string; source: string; since: string };

function read(search: string): Params {
  const p = new URLSearchParams(search);
  const mode = p.get("mode");
  return {
    q: p.get("q") ?? "",
    mode: mode === "text" || mode === "semantic" ? mode : "hybrid",
    project: p.get("project") ?? "",
    role: p.get("role") ?? "",
    kind: p.get("kind") ?? "",
    source: p.get("source") ?? "",
    since: p.get("since") ?? "",
  };
}

function write(params: Params): string {
  const p = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value && !(key === "mode" && value === "hybrid")) p.set(key, value);
  return p.toString();
}

export function SearchPage() {
  const search = useSearch();
  const [, navigate] = useLocation();
  const params = read(search);
  const [text, setText] = useState(params.q);
  const q = useDebounced(text.trim(), 150);
  const projects = useProjects();
  const input = useRef<HTMLInputElement>(null);
  useTitle(params.q ? `Search: ${params.q}` : "Search");

  const set = (change: Partial<Params>) => navigate(`/search?${write({ ...params, ...change })}`, { replace: true });

  useEffect(() => {
    // A search started elsewhere (the header's box) while this page is open.
    if (params.q !== text.trim() && params.q !== q) setText(params.q);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [params.q]);
  useEffect(() => {
    if (q !== params.q) set({ q });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q]);
  useEffect(() => {
    if (!params.q) input.current?.focus();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // "Past week" means the same instant for as long as the filter is on (rounded to the hour),
  // so the live query's arguments do not change on every render.
  const sinceMs = useMemo(() => {
    const span = SINCE.find(([key]) => key === params.since)?.[2] ?? 0;
    return span ? Math.floor((Date.now() - span) / HOUR) * HOUR : undefined;
  }, [params.since]);

  const args: SearchArgs | "skip" = params.q
    ? {
        q: params.q,
        mode: params.mode,
        limit: 30,
        ...(params.project ? { projectId: params.project } : {}),
        ...(params.role ? { role: params.role as SearchArgs["role"] } : {}),
        ...(params.kind ? { kind: params.kind } : {}),
        ...(params.source ? { source: params.source } : {}),
        ...(sinceMs ? { since: sinceMs } : {}),
      }
    : "skip";
  const results = useQuery(api.searchThreads, args);

  return (
    <div className="page search-page">
      <h1 className="visually-hidden">Search</h1>
      <form
        className="search-form"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          set({ q: text.trim() });
        }}
      >
        <label htmlFor="search-page-input" className="visually-hidden">
          Search threads
        </label>
        <input
          id="search-page-input"
          ref={input}
          className="search-input"
          type="search"
          placeholder="Words, identifiers, paths, or what it was about"
          autoComplete="off"
          spellCheck={false}
          value={text}
          onChange={(event) => setText(event.target.value)}
        />
        <div className="segmented" role="radiogroup" aria-label="Search mode">
          {MODES.map(([mode, label]) => (
            <button
              key={mode}
              type="button"
              role="radio"
              aria-checked={params.mode === mode}
              className="segment"
              onClick={() => set({ mode })}
            >
              {label}
            </button>
          ))}
        </div>
      </form>
      <div className="search-filters">
        <Filter label="Project" value={params.project} onChange={(project) => set({ project })}>
          <option value="">All projects</option>
          {(projects.list ?? []).map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </Filter>
        <Filter label="Who" value={params.role} onChange={(role) => set({ role })}>
          <option value="">Anyone</option>
          <option value="user">You</option>
          <option value="assistant">Codex</option>
          <option value="system">System</option>
        </Filter>
        <Filter label="Kind" value={params.kind} onChange={(kind) => set({ kind })}>
          <option value="">Everything</option>
          {KINDS.map((kind) => (
            <option key={kind} value={kind}>
              {KIND_LABEL[kind]}
            </option>
          ))}
        </Filter>
        <Filter label="Source" value={params.source} onChange={(source) => set({ source })}>
          <option value="">All sources</option>
          {["cli", "vscode", "exec", "mcp"].map((source) => (
            <option key={source} value={source}>
              {sourceLabel(source)}
            </option>
          ))}
        </Filter>
        <Filter label="When" value={params.since} onChange={(since) => set({ since })}>
          {SINCE.map(([key, label]) => (
            <option key={key} value={key}>
              {label}
            </option>
          ))}
        </Filter>
      </div>
      <div aria-live="polite" className="search-status">
        {params.q && results === undefined ? <p className="muted">Searching…</p> : null}
        {results && results.length === 0 ? <p className="muted">Nothing matches “{params.q}”.</p> : null}
        {results && results.length ? <p className="muted">{plural(results.length, "thread")}</p> : null}
      </div>
      {!params.q ? (
        <p className="muted search-hint">
          Search finds exact words and identifiers (<code>flaky_websocket_test</code>, <code>src/app.py</code>) and
          also what a thread was about, in your own words.
        </p>
      ) : null}
      {results?.length ? (
        <ol className="search-results" role="list" data-testid="search-results">
          {results.map((thread) => (
            <li key={thread.threadId} className="result" data-thread-id={thread.threadId}>
              <div className="result-head">
                <Link href={`/t/${thread.threadId}`} className="result-title">
                  {threadTitle({ id: thread.threadId, title: thread.title })}
                </Link>
                <span className="result-meta">
                  {projects.byId.get(thread.projectId ?? "")?.name ?? ""}
                  {thread.source ? (
                    <span className="source" data-source={thread.source}>
                      {sourceLabel(thread.source)}
                    </span>
                  ) : null}
                  {thread.hitCount > thread.hits.length ? <span>{plural(thread.hitCount, "hit")}</span> : null}
                </span>
              </div>
              <ul role="list" className="result-hits">
                {thread.hits.map((hit) => (
                  <li key={hit.idx}>
                    <Link href={`/t/${hit.threadId}?at=${hit.idx}`} className="hit" data-idx={hit.idx}>
                      <span className="hit-meta">
                        <span className="hit-who">{hit.role === "user" ? "You" : hit.role === "assistant" ? "Codex" : "System"}</span>
                        {hit.kind !== "message" ? <span className="chip">{KIND_LABEL[hit.kind] ?? hit.kind}</span> : null}
                        <time dateTime={isoTime(hit.ts)} title={dateTime(hit.ts)}>
                          {ago(hit.ts)}
                        </time>
                      </span>
                      <span className="hit-snippet">
                        <Snippet text={hit.snippet} />
                      </span>
                    </Link>
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ol>
      ) : null}
    </div>
  );
}

function Filter({
  label,
  value,
  onChange,
  children,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  children: React.ReactNode;
}) {
  const id = `search-filter-${label.toLowerCase()}`;
  return (
    <div className="filter">
      <label htmlFor={id} className="filter-label">
        {label}
      </label>
      <select id={id} className="select" value={value} onChange={(event) => onChange(event.target.value)}>
        {children}
      </select>
    </div>
  );
}
