import type { Project } from "../api";
import type { Filters } from "../lib/filters";

const SOURCES: [string, string][] = [
  ["", "All sources"],
  ["cli", "CLI"],
  ["vscode", "IDE"],
  ["exec", "exec"],
  ["mcp", "MCP"],
];

export function HistoryFilters({ filters, projects }: { filters: Filters; projects: Project[] }) {
  return (
    <div className="history-filters">
      <label className="visually-hidden" htmlFor="filter-project">
        Project
      </label>
      <select
        id="filter-project"
        className="select"
        value={filters.projectId}
        onChange={(e) => filters.set({ projectId: e.target.value })}
      >
        <option value="">All projects</option>
        {projects.map((p) => (
          <option key={p.id} value={p.id}>
            {p.name}
          </option>
        ))}
      </select>
      <label className="visually-hidden" htmlFor="filter-source">
        Source
      </label>
      <select
        id="filter-source"
        className="select"
        value={filters.source}
        onChange={(e) => filters.set({ source: e.target.value })}
      >
        {SOURCES.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
      <label className="toggle">
        <input
          type="checkbox"
          checked={filters.archived}
          onChange={(e) => filters.set({ archived: e.target.checked })}
        />
        <span>Archived</span>
      </label>
    </div>
  );
}
