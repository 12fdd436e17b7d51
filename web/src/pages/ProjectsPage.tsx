import { FolderGit2 } from "lucide-react";
import { useLocation } from "wouter";
import { useFilterState } from "../lib/filters";
import { ago, dateTime, isoTime, plural, shortPath } from "../lib/format";
import { useProjects } from "../lib/projects";
import { useTitle } from "../lib/title";

/** Every project with its thread count and last activity; choosing one filters the history. */
export function ProjectsPage() {
  const filters = useFilterState();
  const { list } = useProjects();
  const [, navigate] = useLocation();
  useTitle("Projects");
  return (
    <div className="page">
      <h1>Projects</h1>
      <p className="muted page-lede">One per repository root, or per working directory outside a repository.</p>
      {list === undefined ? <p className="muted">Loading…</p> : null}
      {list && list.length === 0 ? <p className="muted">No projects yet: none of the mirrored threads has run anywhere.</p> : null}
      {list?.length ? (
        <ul role="list" className="cards" data-testid="projects">
          {list.map((project) => (
            <li key={project.id} className="card">
              <div className="card-head">
                <FolderGit2 size={16} aria-hidden className="card-icon" />
                <h2 className="card-title">{project.name}</h2>
                <span className="card-count">{plural(project.threadCount, "thread")}</span>
              </div>
              <div className="card-path" title={project.workingDir}>
                {shortPath(project.workingDir, 4)}
              </div>
              <div className="card-meta">
                {project.repoUrl ? <span className="truncate">{project.repoUrl}</span> : null}
                {project.repoBranch ? <span>{project.repoBranch}</span> : null}
                {project.lastActiveAt ? (
                  <span>
                    active <time dateTime={isoTime(project.lastActiveAt)} title={dateTime(project.lastActiveAt)}>{ago(project.lastActiveAt)}</time>
                  </span>
                ) : null}
              </div>
              <button
                type="button"
                className="button card-action"
                onClick={() => {
                  filters.set({ projectId: project.id });
                  navigate("/");
                }}
              >
                Show its threads
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
