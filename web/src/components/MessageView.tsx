import {
  AlertTriangle,
  Brain,
  Check,
  ChevronRight,
  Circle,
  CircleDot,
  FileDiff,
  Globe,
  OctagonX,
  SquareTerminal,
  Wrench,
} from "lucide-react";
import { memo, useState, type ReactNode } from "react";
import type { Message } from "../api";
import { parsePatch, type DiffFile } from "../lib/diff";
import { count, dateTime, duration, isoTime, plural } from "../lib/format";
import { Markdown } from "./Markdown";

// One transcript row, drawn by kind: what was said as Markdown, and each kind of tool
// activity with its own compact look that opens for detail.

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);

/** A row re-renders only when what it shows changes: every live update brings new objects for
 * all the rows of a block or the tail, most of them unchanged. */
export const MessageView = memo(MessageKind, (a, b) => sameMessage(a.message, b.message));

function sameMessage(a: Message, b: Message): boolean {
  return (
    a.id === b.id &&
    a.text === b.text &&
    a.kind === b.kind &&
    a.ts === b.ts &&
    JSON.stringify(a.data) === JSON.stringify(b.data)
  );
}

function MessageKind({ message }: { message: Message }) {
  switch (message.kind) {
    case "message":
      return message.role === "user" ? <UserMessage message={message} /> : <AssistantMessage message={message} />;
    case "reason":
      return <Reasoning message={message} />;
    case "cmd":
      return <Command message={message} />;
    case "patch":
      return <Patch message={message} />;
    case "plan":
      return <Plan message={message} />;
    case "search":
      return <WebSearch message={message} />;
    case "tool":
      return <ToolCall message={message} />;
    case "error":
      return message.data.aborted ? <Interrupted message={message} /> : <ErrorRow message={message} />;
    default:
      return <Generic message={message} />;
  }
}

function Time({ ts }: { ts: number | null }) {
  if (!ts) return null;
  const date = new Date(ts);
  return (
    <time className="msg-time" dateTime={isoTime(ts)} title={dateTime(ts)}>
      {date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })}
    </time>
  );
}

function UserMessage({ message }: { message: Message }) {
  const images = num(message.data.images);
  return (
    <div className="msg msg-user">
      <div className="msg-label">
        <span>You</span>
        <Time ts={message.ts} />
      </div>
      <Markdown text={message.text} />
      {images ? <div className="msg-note">{plural(images, "image")} attached</div> : null}
    </div>
  );
}

function AssistantMessage({ message }: { message: Message }) {
  const commentary = str(message.data.phase) === "commentary";
  return (
    <div className={`msg msg-assistant${commentary ? " msg-commentary" : ""}`}>
      <Markdown text={message.text} />
    </div>
  );
}

/** A line of activity that opens to show detail: icon, summary, trailing badges. */
function Activity({
  icon,
  kind,
  summary,
  badges,
  children,
  defaultOpen = false,
  tone,
}: {
  icon: ReactNode;
  kind: string;
  summary: ReactNode;
  badges?: ReactNode;
  children?: ReactNode;
  defaultOpen?: boolean;
  tone?: "bad" | "warn";
}) {
  const [open, setOpen] = useState(defaultOpen);
  const expandable = children !== undefined && children !== null && children !== false;
  const head = (
    <>
      <span className="act-icon" aria-hidden>
        {icon}
      </span>
      <span className="act-kind">{kind}</span>
      <span className="act-summary">{summary}</span>
      {badges ? <span className="act-badges">{badges}</span> : null}
      {expandable ? <ChevronRight size={14} className="chevron" aria-hidden /> : null}
    </>
  );
  return (
    <div className={`act${tone ? ` act--${tone}` : ""}`} data-open={open || undefined}>
      {expandable ? (
        <button type="button" className="act-head" aria-expanded={open} onClick={() => setOpen(!open)}>
          {head}
        </button>
      ) : (
        <div className="act-head">{head}</div>
      )}
      {open && expandable ? <div className="act-body">{children}</div> : null}
    </div>
  );
}

function firstLine(text: string): string {
  const line = text.trim().split("\n", 1)[0] ?? "";
  return line.replace(/^\*\*(.*)\*\*$/, "$1").replace(/^#+\s*/, "");
}

function Reasoning({ message }: { message: Message }) {
  const summary = firstLine(message.text) || "Thinking";
  const more = message.text.trim() !== message.text.trim().split("\n", 1)[0];
  return (
    <Activity icon={<Brain size={14} />} kind="Thought" summary={<span className="reason-summary">{summary}</span>}>
      {more ? <Markdown text={message.text} className="md-quiet" /> : null}
    </Activity>
  );
}

function ExitBadge({ code, status }: { code: number | undefined; status: string | undefined }) {
  if (code === undefined) {
    if (status === "running" || status === "in_progress") return <span className="badge">running</span>;
    return null;
  }
  return code === 0 ? (
    <span className="badge badge-ok" title="exit code 0">
      <Check size={12} aria-hidden /> 0
    </span>
  ) : (
    <span className="badge badge-bad" title={`exit code ${code}`}>
      exit {code}
    </span>
  );
}

function Output({ output, chars }: { output: string; chars: number | undefined }) {
  if (!output) return <div className="msg-note">No output.</div>;
  const cut = chars !== undefined && chars > output.length;
  return (
    <>
      <pre className="term-output" tabIndex={0}>
        {output}
      </pre>
      {cut ? (
        <div className="msg-note">
          Showing the start and end of {count(chars)} characters of output.
        </div>
      ) : null}
    </>
  );
}

function Command({ message }: { message: Message }) {
  const d = message.data;
  const command = str(d.command) ?? message.text;
  const code = num(d.exit_code);
  const ms = num(d.duration_ms);
  const output = str(d.output) ?? "";
  const cwd = str(d.workdir) ?? str(d.cwd);
  return (
    <Activity
      icon={<SquareTerminal size={14} />}
      kind="Ran"
      tone={code !== undefined && code !== 0 ? "bad" : undefined}
      summary={<code className="act-code">{command}</code>}
      badges={
        <>
          <ExitBadge code={code} status={str(d.status)} />
          {ms !== undefined ? <span className="badge badge-quiet">{duration(ms)}</span> : null}
        </>
      }
    >
      <div className="term">
        <pre className="term-command" tabIndex={0}>
          <span className="term-prompt" aria-hidden>
            ${" "}
          </span>
          {command}
        </pre>
        {cwd ? <div className="term-cwd">in {cwd}</div> : null}
        <Output output={output} chars={num(d.output_chars)} />
      </div>
    </Activity>
  );
}

function DiffView({ file }: { file: DiffFile }) {
  return (
    <div className="diff" tabIndex={0}>
      {file.lines.map((line, i) => (
        <div key={i} className={`diff-line diff-${line.kind}`}>
          <span className="diff-sign" aria-hidden>
            {line.kind === "add" ? "+" : line.kind === "del" ? "−" : line.kind === "hunk" ? "" : " "}
          </span>
          <span className="diff-text">
            {line.kind === "add" ? <span className="visually-hidden">added: </span> : null}
            {line.kind === "del" ? <span className="visually-hidden">removed: </span> : null}
            {line.text || " "}
          </span>
        </div>
      ))}
    </div>
  );
}

const ACTION_LABEL: Record<DiffFile["action"], string> = {
  add: "added",
  update: "edited",
  delete: "deleted",
  move: "moved",
};

function PatchFile({ file, defaultOpen }: { file: DiffFile; defaultOpen: boolean }) {
  const [open, setOpen] = useState(defaultOpen);
  return (
    <div className="diff-file">
      <button type="button" className="diff-file-head" aria-expanded={open} onClick={() => setOpen(!open)}>
        <ChevronRight size={13} className="chevron" aria-hidden />
        <span className="diff-path">{file.path}</span>
        {file.movedTo ? <span className="muted"> → {file.movedTo}</span> : null}
        <span className="diff-action">{ACTION_LABEL[file.action]}</span>
        <span className="diff-stat">
          {file.added ? <span className="diff-stat-add">+{file.added}</span> : null}
          {file.removed ? <span className="diff-stat-del">−{file.removed}</span> : null}
        </span>
      </button>
      {open && file.lines.length ? <DiffView file={file} /> : null}
    </div>
  );
}

function Patch({ message }: { message: Message }) {
  const d = message.data;
  const patch = str(d.patch) ?? "";
  const files = patch ? parsePatch(patch) : [];
  const named = Array.isArray(d.files) ? (d.files as unknown[]).filter((f): f is string => typeof f === "string") : [];
  const failed = d.success === false || (num(d.exit_code) ?? 0) !== 0;
  const lines = files.reduce((total, f) => total + f.lines.length, 0);
  const added = files.reduce((total, f) => total + f.added, 0);
  const removed = files.reduce((total, f) => total + f.removed, 0);
  const fileCount = files.length || named.length;
  return (
    <Activity
      icon={<FileDiff size={14} />}
      kind="Edited"
      tone={failed ? "bad" : undefined}
      defaultOpen
      summary={<span>{fileCount ? plural(fileCount, "file") : message.text}</span>}
      badges={
        <>
          {added ? <span className="diff-stat-add">+{added}</span> : null}
          {removed ? <span className="diff-stat-del">−{removed}</span> : null}
          {failed ? <span className="badge badge-bad">failed</span> : null}
        </>
      }
    >
      <div className="diff-files">
        {files.length
          ? files.map((file, i) => <PatchFile key={`${file.path}-${i}`} file={file} defaultOpen={lines <= 60} />)
          : named.map((path) => (
              <div key={path} className="diff-file-head diff-file-head--static">
                <span className="diff-path">{path}</span>
              </div>
            ))}
        {failed && str(d.output) ? <Output output={str(d.output) ?? ""} chars={num(d.output_chars)} /> : null}
      </div>
    </Activity>
  );
}

type Step = { step: string; status: string };

function Plan({ message }: { message: Message }) {
  const steps = (Array.isArray(message.data.plan) ? message.data.plan : []) as Step[];
  const explanation = str(message.data.explanation);
  const done = steps.filter((s) => s.status === "completed").length;
  return (
    <div className="act act-plan">
      <div className="plan-head">
        <span className="act-kind">Plan</span>
        <span className="muted">
          {done} of {steps.length} done
        </span>
      </div>
      {explanation ? <Markdown text={explanation} className="plan-explanation" /> : null}
      <ul role="list" className="plan-steps">
        {steps.map((s, i) => (
          <li key={i} className={`plan-step plan-step--${s.status}`}>
            {s.status === "completed" ? (
              <Check size={14} aria-label="Done" />
            ) : s.status === "in_progress" ? (
              <CircleDot size={14} aria-label="In progress" />
            ) : (
              <Circle size={14} aria-label="To do" />
            )}
            <span>{s.step}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

function WebSearch({ message }: { message: Message }) {
  const queries = (Array.isArray(message.data.queries) ? message.data.queries : []).filter(
    (q): q is string => typeof q === "string",
  );
  const shown = queries.length ? queries : [message.text];
  return (
    <Activity
      icon={<Globe size={14} />}
      kind="Searched"
      summary={<span className="search-query">{shown[0]}</span>}
      badges={shown.length > 1 ? <span className="badge badge-quiet">+{shown.length - 1}</span> : null}
    >
      {shown.length > 1 ? (
        <ul className="search-queries">
          {shown.map((q, i) => (
            <li key={i}>{q}</li>
          ))}
        </ul>
      ) : null}
    </Activity>
  );
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Tool arguments as a short line: `key value, key value` for a JSON object. */
function argumentSummary(args: string): string {
  try {
    const parsed: unknown = JSON.parse(args);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      return Object.entries(parsed as Record<string, unknown>)
        .map(([key, value]) => `${key} ${typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value)}`)
        .join(", ");
    }
  } catch {
    // not JSON: shown as it is
  }
  return args;
}

function ToolCall({ message }: { message: Message }) {
  const d = message.data;
  const tool = str(d.tool) ?? "tool";
  const args = str(d.arguments) ?? "";
  const code = num(d.exit_code);
  const output = str(d.output) ?? "";
  const ms = num(d.duration_ms);
  return (
    <Activity
      icon={<Wrench size={14} />}
      kind="Called"
      summary={
        <span className="act-code">
          <strong>{tool}</strong> <span className="act-args">{argumentSummary(args).slice(0, 200)}</span>
        </span>
      }
      badges={
        <>
          <ExitBadge code={code} status={str(d.status)} />
          {ms !== undefined ? <span className="badge badge-quiet">{duration(ms)}</span> : null}
        </>
      }
    >
      <div className="term">
        {args ? (
          <pre className="term-command" tabIndex={0}>
            {prettyJson(args)}
          </pre>
        ) : null}
        <Output output={output} chars={num(d.output_chars)} />
      </div>
    </Activity>
  );
}

function ErrorRow({ message }: { message: Message }) {
  return (
    <div className="callout callout-bad" role="note">
      <OctagonX size={16} aria-hidden />
      <div>
        <div className="callout-title">Error</div>
        <div className="callout-text">{message.text}</div>
      </div>
    </div>
  );
}

function Interrupted({ message }: { message: Message }) {
  return (
    <div className="divider divider-warn" role="note">
      <AlertTriangle size={14} aria-hidden />
      <span>{message.text || "Turn interrupted"}</span>
      <Time ts={message.ts} />
    </div>
  );
}

function Generic({ message }: { message: Message }) {
  return (
    <div className="msg msg-system">
      <span className="act-kind">{message.kind}</span> {message.text}
    </div>
  );
}
