/** A search snippet: the server marks matches with <mark>…</mark>; everything else is text
 * (rendered by React, so nothing in a message can become markup). */
export function Snippet({ text }: { text: string }) {
  const parts = text.split(/(<mark>.*?<\/mark>)/gs);
  return (
    <>
      {parts.map((part, i) =>
        part.startsWith("<mark>") && part.endsWith("</mark>") ? (
          <mark key={i}>{part.slice(6, -7)}</mark>
        ) : (
          part
        ),
      )}
    </>
  );
}
