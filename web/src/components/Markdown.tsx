import { memo, useMemo } from "react";
import { renderMarkdown, useHighlighter } from "../lib/markdown";

/** A message's Markdown, rendered safely (see lib/markdown). */
export const Markdown = memo(function Markdown({ text, className }: { text: string; className?: string }) {
  const highlighted = useHighlighter();
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const html = useMemo(() => renderMarkdown(text), [text, highlighted]);
  return <div className={`md${className ? ` ${className}` : ""}`} dangerouslySetInnerHTML={{ __html: html }} />;
});
