import { useMutation, useQuery } from "convex/react";
import { Archive, ArchiveRestore, Check, Copy, GitBranch, Pencil, Pin, PinOff, Sparkles } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { Link } from "wouter";
import { api, type ThreadDetail } from "../api";
import { ago, compact, count, dateTime, isoTime, plural, sourceLabel, threadTitle } from "../lib/format";
import { useProjects } from "../lib/projects";

/** Title (renamed in place), where and when it ran, tokens, and what can be done with it. */
export function ThreadHeader({ thread }: { thread: ThreadDetail }) {
  const projects = useProjects();
  const project = projects.byId.get(thread.projectId ?? "");
  const [similarOpen, setSimilarOpen] = useState(false);
  const setPinned = useMutation(api.setPinned);
  const setArchived = useMutation(api.setArchived);
  const tokens = thread.tokens;

  // Esc closes the similar-threads panel, like every other panel.
  useEffect(() => {
    if (!similarOpen) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") setSimilarOpen(false);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [similarOpen]);

  return (
    <header className="thread-header" data-testid="thread-header">
      <Title thread={thread} />
      <div className="thread-meta">
        {project ? (
          <span className="meta-item" title={project.workingDir}>
            {project.name}
          </span>
        ) : null}
        {thread.git?.branch ? (
          <span className="meta-item" title={thread.git.commit_hash ?? undefined}>
            <GitBranch size={12} aria-hidden /> {thread.git.branch}
          </span>
        ) : null}
        <span className="source" data-source={thread.source ?? ""}>
          {sourceLabel(thread.source)}
        </span>
        {thread.model ? <span className="meta-item">{thread.model}</span> : null}
        {tokens && tokens.total ? (
          <span
            className="meta-item"
            title={`${count(tokens.input)} input (${count(tokens.cached)} cached), ${count(tokens.output)} output (${count(tokens.reasoning)} reasoning)`}
          >
            {compact(tokens.total)} tokens
          </span>
        ) : null}
        <span className="meta-item">{plural(thread.messageCount, "message")}</span>
        <span className="meta-item">
          started <time dateTime={isoTime(thread.createdAt)} title={dateTime(thread.createdAt)}>{ago(thread.createdAt)}</time>
        </span>
        {thread.updatedAt ? (
          <span className="meta-item">
            updated <time dateTime={isoTime(thread.updatedAt)} title={dateTime(thread.updatedAt)}>{ago(thread.updatedAt)}</time>
          </span>
        ) : null}
        {thread.archived ? <span className="chip chip-warn">archived</span> : null}
      </div>
      <Lineage thread={thread} />
      <div className="thread-actions" role="toolbar" aria-label="Thread actions">
        <button
          type="button"
          className="button"
          aria-pressed={thread.pinned}
          onClick={() => void setPinned({ id: thread.id, pinned: !thread.pinned })}
          data-testid="pin"
        >
          {thread.pinned ? <PinOff size={14} aria-hidden /> : <Pin size={14} aria-hidden />}
          <span className="button-label">{thread.pinned ? "Unpin" : "Pin"}</span>
        </button>
        <button
          type="button"
          className="button"
          aria-pressed={thread.archived}
          onClick={() => void setArchived({ id: thread.id, archived: !thread.archived })}
          data-testid="archive"
        >
          {thread.archived ? <ArchiveRestore size={14} aria-hidden /> : <Archive size={14} aria-hidden />}
          <span className="button-label">{thread.archived ? "Unarchive" : "Archive"}</span>
        </button>
        <CopyResume command={thread.resumeCommand} />
        <button
          type="button"
          className="button"
          aria-expanded={similarOpen}
          aria-controls="similar"
          onClick={() => setSimilarOpen((open) => !open)}
        >
          <Sparkles size={14} aria-hidden /> <span className="button-label">Similar</span>
        </button>
      </div>
      {similarOpen ? <Similar threadId={thread.id} /> : null}
    </header>
  );
}

function Title({ thread }: { thread: ThreadDetail }) {
  const rename = useMutation(api.rename);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState("");
  const input = useRef<HTMLInputElement>(null);
  const title = threadTitle(thread);

  useEffect(() => {
    if (editing) input.current?.select();
  }, [editing]);

  if (editing) {
    const save = () => {
      setEditing(false);
      const value = draft.trim();
      if (value !== (thread.title ?? "")) void rename({ id: thread.id, title: value || null });
    };
    return (
      <form
        className="title-form"
        onSubmit={(event) => {
          event.preventDefault();
          save();
        }}
      >
        <label htmlFor="thread-title-input" className="visually-hidden">
          Thread title (empty restores Codex's title)
        </label>
        <input
          id="thread-title-input"
          ref={input}
          className="title-input"
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === "Escape") {
              event.preventDefault();
              event.stopPropagation();
              setEditing(false);
            }
          }}
          onBlur={save}
          maxLength={500}
        />
      </form>
    );
  }
  return (
    <div className="title-row">
      <h1 className="thread-title" data-testid="thread-title">
        {title}
      </h1>
      <button
        type="button"
        className="icon-button"
        aria-label="Rename thread"
        title="Rename"
        onClick={() => {
          setDraft(thread.title ?? "");
          setEditing(true);
        }}
        data-testid="rename"
      >
        <Pencil size={15} aria-hidden />
      </button>
    </div>
  );
}

function Lineage({ thread }: { thread: ThreadDetail }) {
  if (!thread.parentThreadId && !thread.forkedFromId) return null;
  return (
    <div className="lineage">
      {thread.parentThreadId ? (
        <span>
          Sub-agent{thread.agentNickname ? ` “${thread.agentNickname}”` : ""}
          {thread.agentRole ? ` (${thread.agentRole})` : ""} of{" "}
          <Link href={`/t/${thread.parentThreadId}`}>{thread.parentThreadId.slice(0, 8)}</Link>
        </span>
      ) : null}
      {thread.forkedFromId ? (
        <span>
          Forked from <Link href={`/t/${thread.forkedFromId}`}>{thread.forkedFromId.slice(0, 8)}</Link>
        </span>
      ) : null}
    </div>
  );
}

function CopyResume({ command }: { command: string }) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  useEffect(() => {
    if (!copied) return;
    const timer = window.setTimeout(() => setCopied(null), 1800);
    return () => window.clearTimeout(timer);
  }, [copied]);
  return (
    <>
      <button
        type="button"
        className="button"
        title={command}
        onClick={() => {
          if (!navigator.clipboard) {
            setCopied("no");
            return;
          }
          navigator.clipboard.writeText(command).then(
            () => setCopied("yes"),
            () => setCopied("no"),
          );
        }}
      >
        {copied === "yes" ? <Check size={14} aria-hidden /> : <Copy size={14} aria-hidden />}
        <span className="button-label">{copied === "yes" ? "Copied" : "Copy resume command"}</span>
      </button>
      {copied === "no" ? (
        <input className="copy-fallback" readOnly value={command} aria-label="Resume command" onFocus={(e) => e.target.select()} autoFocus />
      ) : null}
      <span className="visually-hidden" role="status">
        {copied === "yes" ? "Resume command copied" : ""}
      </span>
    </>
  );
}

function Similar({ threadId }: { threadId: string }) {
  const similar = useQuery(api.threadsSimilar, { threadId, limit: 6 });
  return (
    <section id="similar" className="similar" aria-label="Similar threads">
      {similar === undefined ? <p className="muted">Looking for similar threads…</p> : null}
      {similar && similar.length === 0 ? <p className="muted">No similar threads yet.</p> : null}
      {similar && similar.length ? (
        <ul role="list">
          {similar.map((hit) => (
            <li key={hit.threadId}>
              <Link href={`/t/${hit.threadId}`} className="similar-link">
                {hit.title?.trim() || hit.threadId.slice(0, 8)}
              </Link>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
