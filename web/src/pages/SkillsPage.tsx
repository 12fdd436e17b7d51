import { useQuery } from "convex/react";
import { AlertTriangle, BookOpen } from "lucide-react";
import { api, type Skill } from "../api";
import { shortPath } from "../lib/format";
import { useTitle } from "../lib/title";

const SCOPES: [string, string][] = [
  ["repo", "Repository"],
  ["user", "User"],
  ["system", "System"],
  ["admin", "Admin"],
];

/** Every skill Codex can see, by scope, and the SKILL.md files it cannot read. */
export function SkillsPage() {
  const skills = useQuery(api.skills, {});
  const status = useQuery(api.status, {});
  const problems = status?.skillProblems ?? [];
  useTitle("Skills");
  const byScope = (scope: string) => (skills ?? []).filter((s) => s.scope === scope);
  const other = (skills ?? []).filter((s) => !SCOPES.some(([scope]) => scope === s.scope));
  return (
    <div className="page">
      <h1>Skills</h1>
      <p className="muted page-lede">From every place Codex looks for SKILL.md files.</p>
      {problems.length ? (
        <section className="problems" aria-labelledby="problems-heading" data-testid="skill-problems">
          <h2 id="problems-heading" className="problems-title">
            <AlertTriangle size={15} aria-hidden /> {problems.length === 1 ? "1 SKILL.md" : `${problems.length} SKILL.md files`} could not be read
          </h2>
          <ul role="list">
            {problems.map((problem) => (
              <li key={problem.path}>
                <code title={problem.path}>{shortPath(problem.path, 4)}</code>
                <span className="muted"> ({problem.scope}): </span>
                {problem.reason}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {skills === undefined ? <p className="muted">Loading…</p> : null}
      {skills && skills.length === 0 ? <p className="muted">No skills found.</p> : null}
      {[...SCOPES, ...(other.length ? ([["other", "Other"]] as [string, string][]) : [])].map(([scope, label]) => {
        const list = scope === "other" ? other : byScope(scope);
        if (!list.length) return null;
        return (
          <section key={scope} aria-labelledby={`scope-${scope}`} className="skill-group">
            <h2 id={`scope-${scope}`} className="section-heading">
              {label}
            </h2>
            <ul role="list" className="cards" data-testid={`skills-${scope}`}>
              {list.map((skill) => (
                <SkillCard key={skill.id} skill={skill} />
              ))}
            </ul>
          </section>
        );
      })}
    </div>
  );
}

function SkillCard({ skill }: { skill: Skill }) {
  return (
    <li className="card">
      <div className="card-head">
        <BookOpen size={16} aria-hidden className="card-icon" />
        <h3 className="card-title">{skill.name}</h3>
        {skill.license ? <span className="chip">{skill.license}</span> : null}
      </div>
      <p className="card-text">{skill.description}</p>
      {skill.allowedTools?.length ? (
        <div className="card-meta">
          <span>tools: {skill.allowedTools.join(", ")}</span>
        </div>
      ) : null}
      <div className="card-path" title={skill.path}>
        {shortPath(skill.path, 4)}
      </div>
    </li>
  );
}
