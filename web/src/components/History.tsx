import { usePaginatedQuery } from "convex/react";
import { ChevronRight } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { api, type ThreadListArgs, type ThreadSummary } from "../api";
import { useFilterState } from "../lib/filters";
import { plural } from "../lib/format";
import { useProjects } from "../lib/projects";
import { HistoryFilters } from "./HistoryFilters";
import { ThreadRow } from "./ThreadRow";

const PAGE = 40;

/** Pinned threads, then recent ones, live, under the drawer's filters; sub-agents nest under
 * the thread that spawned them; scrolling to the end loads more. */
export function History() {
  const filters = useFilterState();
  const projects = useProjects();
  const base: ThreadListArgs = {
    includeArchived: filters.archived,
    ...(filters.projectId ? { projectId: filters.projectId } : {}),
    ...(filters.source ? { source: filters.source } : {}),
  };
  const pinned = usePaginatedQuery(api.threadsList, { ...base, pinned: true }, { initialNumItems: PAGE });
  const recent = usePaginatedQuery(api.threadsList, { ...base, pinned: false }, { initialNumItems: PAGE });
  const projectName = (t: ThreadSummary) => projects.byId.get(t.projectId ?? "")?.name;
  const loading = recent.status === "LoadingFirstPage";

  return (
    <div className="history">
      <HistoryFilters filters={filters} projects={projects.list ?? []} />
      <nav className="history-list" aria-label="Threads" data-testid="history-list">
        {pinned.results.length ? (
          <section aria-labelledby="pinned-heading" data-testid="pinned">
            <h2 id="pinned-heading" className="section-heading">
              Pinned
            </h2>
            <ThreadList threads={pinned.results} projectName={projectName} />
          </section>
        ) : null}
        <section aria-labelledby="recent-heading" data-testid="recent">
          <h2 id="recent-heading" className="section-heading">
            Recent
          </h2>
          {loading ? <ListSkeleton /> : null}
          {!loading && recent.results.length === 0 ? (
            <p className="empty">No threads match these filters.</p>
          ) : null}
          <ThreadList threads={recent.results} projectName={projectName} />
          <LoadMore
            canLoad={recent.status === "CanLoadMore"}
            loading={recent.status === "LoadingMore"}
            onLoad={() => recent.loadMore(PAGE)}
          />
        </section>
      </nav>
    </div>
  );
}

function ThreadList({
  threads,
  projectName,
}: {
  threads: ThreadSummary[];
  projectName: (t: ThreadSummary) => string | undefined;
}) {
  return (
    <ul role="list">
      {threads.map((t) => (
        <li key={t.id}>
          <ThreadRow thread={t} projectName={projectName(t)} />
          {t.subagentCount ? <Subagents parent={t} /> : null}
        </li>
      ))}
    </ul>
  );
}

/** A thread's sub-agents, folded under it until asked for. */
function Subagents({ parent }: { parent: ThreadSummary }) {
  const [open, setOpen] = useState(false);
  const id = `subagents-${parent.id}`;
  return (
    <div className="subagents">
      <button
        type="button"
        className="subagents-toggle"
        aria-expanded={open}
        aria-controls={id}
        onClick={() => setOpen((value) => !value)}
      >
        <ChevronRight size={13} aria-hidden className="chevron" />
        {plural(parent.subagentCount ?? 0, "sub-agent")}
      </button>
      {open ? <SubagentList id={id} parentId={parent.id} /> : null}
    </div>
  );
}

function SubagentList({ id, parentId }: { id: string; parentId: string }) {
  const children = usePaginatedQuery(
    api.threadsList,
    { parentId, includeArchived: true },
    { initialNumItems: PAGE },
  );
  return (
    <ul role="list" id={id} className="subagent-list">
      {children.results.map((t) => (
        <li key={t.id}>
          <ThreadRow thread={t} nested />
        </li>
      ))}
      {children.status === "CanLoadMore" ? (
        <li>
          <button type="button" className="link-button" onClick={() => children.loadMore(PAGE)}>
            Show more
          </button>
        </li>
      ) : null}
    </ul>
  );
}

/** Loads the next page when it scrolls into view (and on click, for keyboards). */
function LoadMore({ canLoad, loading, onLoad }: { canLoad: boolean; loading: boolean; onLoad: () => void }) {
  const sentinel = useRef<HTMLButtonElement>(null);
  const load = useRef(onLoad);
  load.current = onLoad;
  useEffect(() => {
    const element = sentinel.current;
    if (!canLoad || !element) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) load.current();
      },
      { rootMargin: "400px" },
    );
    observer.observe(element);
    return () => observer.disconnect();
  }, [canLoad]);
  if (!canLoad && !loading) return null;
  return (
    <button
      ref={sentinel}
      type="button"
      className="load-more"
      disabled={loading}
      onClick={onLoad}
      data-testid="load-more"
    >
      {loading ? "Loading…" : "Load more"}
    </button>
  );
}

function ListSkeleton() {
  return (
    <div className="list-skeleton" aria-label="Loading threads" role="status">
      {Array.from({ length: 8 }, (_, i) => (
        <div key={i} className="skeleton-row" />
      ))}
    </div>
  );
}
