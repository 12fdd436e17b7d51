// Patches as files: Codex's apply_patch format ("*** Update File: path", "@@", "+", "-", " ")
// and plain unified diffs ("diff --git", "--- a/x", "+++ b/x").

export type DiffLine = { kind: "add" | "del" | "ctx" | "hunk"; text: string };
export type DiffFile = {
  path: string;
  action: "add" | "update" | "delete" | "move";
  movedTo?: string;
  lines: DiffLine[];
  added: number;
  removed: number;
};

const APPLY_PATCH = /^\*\*\* (Add|Update|Delete) File: (.+)$/;

export function parsePatch(patch: string): DiffFile[] {
  const files: DiffFile[] = [];
  let current: DiffFile | null = null;
  const start = (path: string, action: DiffFile["action"]): DiffFile => {
    const file: DiffFile = { path, action, lines: [], added: 0, removed: 0 };
    files.push(file);
    return file;
  };
  for (const line of patch.split("\n")) {
    const header = APPLY_PATCH.exec(line);
    if (header) {
      current = start(header[2].trim(), header[1].toLowerCase() as DiffFile["action"]);
      continue;
    }
    if (line.startsWith("diff --git ")) {
      const match = / b\/(.+)$/.exec(line);
      current = start(match ? match[1] : line.slice(11), "update");
      continue;
    }
    if (line === "*** Begin Patch" || line === "*** End Patch" || line === "*** End of File") continue;
    const file = current;
    if (file === null) continue;
    if (line.startsWith("*** Move to: ")) {
      file.movedTo = line.slice(13).trim();
      file.action = "move";
    } else if (line.startsWith("+++ ") || line.startsWith("--- ")) {
      if (line.startsWith("+++ /dev/null")) file.action = "delete";
      if (line.startsWith("--- /dev/null")) file.action = "add";
    } else if (line.startsWith("@@")) {
      file.lines.push({ kind: "hunk", text: line });
    } else if (line.startsWith("+")) {
      file.lines.push({ kind: "add", text: line.slice(1) });
      file.added += 1;
    } else if (line.startsWith("-")) {
      file.lines.push({ kind: "del", text: line.slice(1) });
      file.removed += 1;
    } else if (line.startsWith(" ")) {
      file.lines.push({ kind: "ctx", text: line.slice(1) });
    } else if (/^(index |new file mode|deleted file mode|similarity|rename )/.test(line)) {
      continue;
    } else if (line !== "") {
      file.lines.push({ kind: "ctx", text: line });
    }
  }
  return files;
}
