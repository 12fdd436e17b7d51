import { Marked, type Tokens } from "marked";
import { useSyncExternalStore } from "react";

// Markdown for messages. Raw HTML in a message is shown as text, never parsed; links open
// only http(s) and mailto targets, in a new tab; images are not fetched (the page allows only
// its own origin) but shown as links. Fenced code is highlighted once the highlighter chunk
// has loaded; until then (a few ms) it shows plain.

type Highlighter = (code: string, lang: string) => string | null;
let highlighter: Highlighter | null = null;
let loading: Promise<void> | null = null;
const listeners = new Set<() => void>();

function loadHighlighter() {
  loading ??= import("./highlight").then((module) => {
    highlighter = module.highlight;
    listeners.forEach((notify) => notify());
  });
}

/** Re-render when the highlighter arrives. */
export function useHighlighter(): boolean {
  return useSyncExternalStore(
    (notify) => {
      listeners.add(notify);
      return () => listeners.delete(notify);
    },
    () => highlighter !== null,
  );
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Only absolute web and mail links are followed; a local path (Codex often links the files
 * it touched) stays text, as it means nothing on this server. */
function safeHref(href: string): string | null {
  if (!/^(https?:\/\/|mailto:)/i.test(href.trim())) return null;
  try {
    return new URL(href.trim()).href;
  } catch {
    return null;
  }
}

/** Highlighted HTML for a code block, or escaped text (loading the highlighter if needed). */
export function codeHtml(code: string, lang: string | undefined): string {
  const name = (lang ?? "").trim().split(/\s+/)[0];
  if (name) {
    if (highlighter) {
      const html = highlighter(code, name);
      if (html !== null) return html;
    } else {
      loadHighlighter();
    }
  }
  return escapeHtml(code);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text);
    },
    code({ text, lang }: Tokens.Code) {
      const label = lang ? `<span class="code-lang">${escapeHtml(lang.split(/\s+/)[0])}</span>` : "";
      return `<div class="code-block">${label}<pre tabindex="0"><code>${codeHtml(text, lang)}</code></pre></div>`;
    },
    link({ href, title, tokens }: Tokens.Link) {
      const inner = this.parser.parseInline(tokens);
      const safe = safeHref(href);
      if (!safe) return `<span class="md-link" title="${escapeHtml(href)}">${inner}</span>`;
      const titled = title ? ` title="${escapeHtml(title)}"` : "";
      return `<a href="${escapeHtml(safe)}"${titled} target="_blank" rel="noopener noreferrer">${inner}</a>`;
    },
    image({ href, text }: Tokens.Image) {
      const safe = safeHref(href);
      const label = escapeHtml(text || href);
      return safe
        ? `<a href="${escapeHtml(safe)}" target="_blank" rel="noopener noreferrer">[image: ${label}]</a>`
        : `[image: ${label}]`;
    },
  },
});

/** Markdown → safe HTML. */
export function renderMarkdown(text: string): string {
  return marked.parse(text, { async: false }) as string;
}
