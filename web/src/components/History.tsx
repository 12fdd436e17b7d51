import { useQuery } from "convex/react";
import { api } from "../api";
import type { Filters } from "../lib/filters";
import { useProjects } from "../lib/projects";
import { HistoryFilters } from "./HistoryFilters";
import { ThreadRow } from "./ThreadRow";

/** Pinned threads, then recent ones, live, under the drawer's filters. */
export function History({ filters }: { filters: Filters }) {
  const projects = useProjects();
  const threads = useQuery(api.threadsRecent, {
    limit: 200,
    includeArchived: filters.archived,
    ...(filters.projectId ? { projectId: filters.projectId } : {}),
    ...(filters.source ? { source: filters.source } : {}),
  });
  const pinned = threads?.filter((t) => t.pinned) ?? [];
  const recent = threads?.filter((t) => !t.pinned) ?? [];
  return (
    <div className="history">
      <HistoryFilters filters={filters} projects={projects.list ?? []} />
      <nav className="history-list" aria-label="Threads">
        {threads === undefined ? <ListSkeleton /> : null}
        {pinned.length ? (
          <section aria-labelledby="pinned-heading">
            <h2 id="pinned-heading" className="section-heading">
              Pinned
            </h2>
            <ul role="list">
              {pinned.map((t) => (
                <li key={t.id}>
                  <ThreadRow thread={t} projectName={projects.byId.get(t.projectId ?? "")?.name} />
                </li>
              ))}
            </ul>
          </section>
        ) : null}
        {threads !== undefined ? (
          <section aria-labelledby="recent-heading">
            <h2 id="recent-heading" className="section-heading">
              Recent
            </h2>
            {recent.length === 0 ? <p className="empty">No threads match these filters.</p> : null}
            <ul role="list">
              {recent.map((t) => (
                <li key={t.id}>
                  <ThreadRow thread={t} projectName={projects.byId.get(t.projectId ?? "")?.name} />
                </li>
              ))}
            </ul>
          </section>
        ) : null}
      </nav>
    </div>
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
