import { useQuery } from "convex/react";
import { Link } from "wouter";
import { api } from "../api";
import { bytes, count } from "../lib/format";
import { useTitle } from "../lib/title";

const MIRROR: Record<string, string> = {
  live: "Following Codex live",
  catching_up: "Catching up with Codex",
  stopped: "Stopped: see the server's log",
  standby: "Standing by: another replica follows Codex into this database",
  off: "Serving the database without following Codex",
};

/** The start page: what the mirror holds, and where to go from here. (On a phone the start
 * page is the history list itself; this shows beside it on wider screens.) */
export function HomePage() {
  const status = useQuery(api.status, {});
  const projects = useQuery(api.projects, {});
  const skills = useQuery(api.skills, {});
  useTitle(undefined);
  return (
    <div className="page home">
      <h1>Your Codex sessions</h1>
      <p className="muted page-lede">{status ? (MIRROR[status.mirror ?? "live"] ?? status.mirror) : "Connecting…"}</p>
      <ul role="list" className="stats" data-testid="home-counts">
        <Stat label="Threads" value={status?.threads} />
        <Stat label="Messages" value={status?.messages} />
        <Stat label="Projects" value={projects?.length} href="/projects" />
        <Stat label="Skills" value={skills?.length} href="/skills" />
      </ul>
      {status?.codexHomes?.length ? (
        <p className="muted home-homes">
          Mirroring {status.codexHomes.map((home, i) => (
            <span key={home}>
              {i ? ", " : ""}
              <code>{home}</code>
            </span>
          ))}
          {status.lagBytes ? `, ${bytes(status.lagBytes)} not yet read` : ""}.
        </p>
      ) : null}
      <section className="home-keys" aria-labelledby="keys-heading">
        <h2 id="keys-heading" className="section-heading">
          Keyboard
        </h2>
        <ul role="list">
          <li>
            <kbd>/</kbd> search
          </li>
          <li>
            <kbd>j</kbd> <kbd>k</kbd> next and previous thread
          </li>
          <li>
            <kbd>Esc</kbd> close
          </li>
        </ul>
      </section>
    </div>
  );
}

function Stat({ label, value, href }: { label: string; value: number | undefined; href?: string }) {
  const body = (
    <>
      <span className="stat-label">{label}</span>
      <span className="stat-value">{value === undefined ? "…" : count(value)}</span>
    </>
  );
  return <li className="stat">{href ? <Link href={href} className="stat-link">{body}</Link> : body}</li>;
}
