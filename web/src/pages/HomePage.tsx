import { useQuery } from "convex/react";
import { api } from "../api";
import { count } from "../lib/format";

/** The start page: what the mirror holds, and where to go from here. */
export function HomePage() {
  const status = useQuery(api.status, {});
  return (
    <div className="page page--center home">
      <h1>Your Codex sessions</h1>
      {status ? (
        <p className="muted" data-testid="home-counts">
          {count(status.threads)} threads, {count(status.messages)} messages, mirrored live.
        </p>
      ) : null}
      <p className="muted">Pick a thread from the history, or press <kbd>/</kbd> to search.</p>
    </div>
  );
}
