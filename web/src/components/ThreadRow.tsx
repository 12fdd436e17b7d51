import { Archive, GitFork, Pin } from "lucide-react";
import { memo } from "react";
import { Link, useRoute } from "wouter";
import type { ThreadSummary } from "../api";
import { ago, isoTime, plural, sourceLabel, threadTitle } from "../lib/format";

/** One thread in the history list: title, then project, time and size on one quiet line. */
export const ThreadRow = memo(ThreadRowView, (a, b) =>
  a.nested === b.nested && a.projectName === b.projectName && sameThread(a.thread, b.thread),
);

function sameThread(a: ThreadSummary, b: ThreadSummary): boolean {
  return (Object.keys(a) as (keyof ThreadSummary)[]).every((key) => a[key] === b[key]);
}

function ThreadRowView({
  thread,
  projectName,
  nested = false,
}: {
  thread: ThreadSummary;
  projectName?: string;
  nested?: boolean;
}) {
  const [active] = useRoute(`/t/${thread.id}`);
  const title = thread.agentNickname && nested ? thread.agentNickname : threadTitle(thread);
  const when = thread.updatedAt ?? thread.createdAt;
  return (
    <Link
      href={`/t/${thread.id}`}
      className={`thread-row${nested ? " thread-row--nested" : ""}`}
      aria-current={active ? "page" : undefined}
      data-thread-link
      data-thread-id={thread.id}
    >
      <span className="thread-row-title">
        {thread.pinned ? <Pin size={12} className="thread-row-pin" aria-label="Pinned" /> : null}
        {thread.forkedFromId ? <GitFork size={12} aria-label="Fork" /> : null}
        <span className="truncate">{title}</span>
      </span>
      <span className="thread-row-meta">
        {nested && thread.agentRole ? <span className="chip">{thread.agentRole}</span> : null}
        {!nested && projectName ? <span className="truncate thread-row-project">{projectName}</span> : null}
        <span className="source" data-source={thread.source ?? ""}>
          {sourceLabel(thread.source)}
        </span>
        {thread.archived ? <Archive size={12} aria-label="Archived" /> : null}
        <span className="thread-row-count">{plural(thread.messageCount, "msg")}</span>
        <time dateTime={isoTime(when)} className="thread-row-time">
          {ago(when)}
        </time>
      </span>
    </Link>
  );
}
