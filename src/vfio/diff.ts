/**
 * Unified diff of two texts (line based, 3 lines of context), as `diff -u`
 * prints it, for dry runs. Files here are small config files; past
 * MAX_CELLS the diff degrades to "replace everything", still exact.
 */
const CONTEXT = 3;
const MAX_CELLS = 4_000_000;

type Op = { kind: " " | "-" | "+"; line: string };

function splitLines(text: string): { lines: string[]; noEol: boolean } {
  if (text === "") return { lines: [], noEol: false };
  const noEol = !text.endsWith("\n");
  const lines = (noEol ? text : text.slice(0, -1)).split("\n");
  return { lines, noEol };
}

function ops(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > MAX_CELLS) return [...a.map((line) => ({ kind: "-" as const, line })), ...b.map((line) => ({ kind: "+" as const, line }))];
  // lcs[i][j] = LCS length of a[i..] and b[j..], flattened.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number) => i * (m + 1) + j;
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[at(i, j)] = a[i] === b[j] ? lcs[at(i + 1, j + 1)]! + 1 : Math.max(lcs[at(i + 1, j)]!, lcs[at(i, j + 1)]!);
  const out: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: " ", line: a[i]! });
      i++;
      j++;
    } else if (lcs[at(i + 1, j)]! >= lcs[at(i, j + 1)]!) out.push({ kind: "-", line: a[i++]! });
    else out.push({ kind: "+", line: b[j++]! });
  }
  while (i < n) out.push({ kind: "-", line: a[i++]! });
  while (j < m) out.push({ kind: "+", line: b[j++]! });
  return out;
}

/** `before`/`after` null = the file does not exist. Returns "" when equal. */
export function unifiedDiff(path: string, before: string | null, after: string | null): string {
  if (before === after) return "";
  const A = splitLines(before ?? "");
  const B = splitLines(after ?? "");
  // A missing final newline is a difference of the last line: mark it on the line itself.
  if (A.noEol && A.lines.length) A.lines[A.lines.length - 1] += "\n\\ No newline at end of file";
  if (B.noEol && B.lines.length) B.lines[B.lines.length - 1] += "\n\\ No newline at end of file";
  const all = ops(A.lines, B.lines);
  const header = [`--- ${before === null ? "/dev/null" : `a${path}`}`, `+++ ${after === null ? "/dev/null" : `b${path}`}`];
  const body: string[] = [];
  let k = 0;
  while (k < all.length) {
    if (all[k]!.kind === " ") {
      k++;
      continue;
    }
    // A hunk: from CONTEXT lines before this change to CONTEXT after the last change within 2*CONTEXT.
    let start = Math.max(0, k - CONTEXT);
    let end = k;
    while (end < all.length) {
      if (all[end]!.kind !== " ") {
        end++;
        continue;
      }
      let run = end;
      while (run < all.length && all[run]!.kind === " ") run++;
      if (run < all.length && run - end <= 2 * CONTEXT) end = run;
      else {
        end = Math.min(run, end + CONTEXT);
        break;
      }
    }
    let aStart = 0;
    let bStart = 0;
    for (let x = 0; x < start; x++) {
      if (all[x]!.kind !== "+") aStart++;
      if (all[x]!.kind !== "-") bStart++;
    }
    const hunk = all.slice(start, end);
    const aLen = hunk.filter((o) => o.kind !== "+").length;
    const bLen = hunk.filter((o) => o.kind !== "-").length;
    const range = (s: number, len: number) => `${len === 0 ? s : s + 1}${len === 1 ? "" : `,${len}`}`;
    body.push(`@@ -${range(aStart, aLen)} +${range(bStart, bLen)} @@`);
    for (const o of hunk) body.push(o.kind + o.line);
    k = end;
    start = end;
  }
  return [...header, ...body].join("\n") + "\n";
}
