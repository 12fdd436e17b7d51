import { useQuery } from "convex/react";
import { Link, useParams, useSearch } from "wouter";
import { api } from "../api";
import { ThreadHeader } from "../components/ThreadHeader";
import { Transcript } from "../components/Transcript";
import { threadTitle } from "../lib/format";
import { useTitle } from "../lib/title";

/** One thread, live: its header and its whole transcript. `?at=<idx>` opens it at that row. */
export function ThreadPage() {
  const { id } = useParams<{ id: string }>();
  const search = new URLSearchParams(useSearch());
  const atParam = search.get("at");
  const at = atParam !== null && /^\d+$/.test(atParam) ? Number(atParam) : null;
  const thread = useQuery(api.threadsGet, { id });
  useTitle(thread ? threadTitle(thread) : undefined);

  if (thread === null) {
    return (
      <div className="page page--center">
        <h1>No such thread</h1>
        <p className="muted">
          Nothing is mirrored under <code>{id}</code>. <Link href="/">Back to the start</Link>.
        </p>
      </div>
    );
  }
  // The transcript subscribes at once, beside the header's query: one round trip to the end.
  return (
    <div className="thread-page" aria-busy={thread === undefined}>
      {thread ? (
        <ThreadHeader thread={thread} />
      ) : (
        <div className="thread-header">
          <div className="skeleton-row skeleton-title" />
        </div>
      )}
      <Transcript key={id} threadId={id} itemCount={thread?.itemCount} at={at} />
    </div>
  );
}
