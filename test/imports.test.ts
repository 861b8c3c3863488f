/**
 * The modules of src/ and ffi/ import each other as a tree (a DAG): no import cycle, counting
 * `import type` and re-exports too, as written in the source. Imports are read with
 * TypeScript's own pre-processor (ts.preProcessFile), so comments and strings cannot fool it.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { REPO_ROOT } from "./helpers/env.ts";

type Graph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Relative imports of each file, resolved to files (`./x.ts`, or `./x` → x.ts / x/index.ts). */
export function importGraph(files: string[]): Graph {
  const graph: Graph = new Map();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    const deps: string[] = [];
    for (const ref of info.importedFiles) {
      if (!ref.fileName.startsWith(".")) continue;
      const base = resolve(dirname(file), ref.fileName);
      const target = [base, `${base}.ts`, join(base, "index.ts")].find((p) => existsSync(p) && statSync(p).isFile() && p.endsWith(".ts"));
      if (target) deps.push(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Every import cycle's path (one per back edge of a depth-first walk; none when the graph is a DAG). */
export function findCycles(graph: Graph): string[][] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, "open");
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === "open") cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return cycles;
}

describe("import graph", () => {
  test("the checker sees a cycle, type-only imports and re-exports included", () => {
    const g: Graph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
      ["d", ["a"]],
    ]);
    expect(findCycles(g)).toEqual([["a", "b", "c", "a"]]);
    expect(findCycles(new Map([["a", ["b"]], ["b", []], ["c", ["a", "b"]]]))).toEqual([]);
    const imports = ts.preProcessFile(`import type { A } from "./a.ts";\nexport { B } from "./b.ts";\n// import "./not-me.ts"\nconst s = "import x from './nor-me.ts'";\nimport "./c.ts";`, true, true);
    expect(imports.importedFiles.map((f) => f.fileName)).toEqual(["./a.ts", "./b.ts", "./c.ts"]);
  });

  test("src/ and ffi/ have no import cycle", () => {
    const files = [...sourceFiles(join(REPO_ROOT, "src")), ...sourceFiles(join(REPO_ROOT, "ffi"))];
    const graph = importGraph(files);
    expect(graph.size).toBeGreaterThan(100);
    // the graph is real: a known edge is in it
    expect(graph.get(join(REPO_ROOT, "src/gamestream/rtsp/announce.ts"))).toContain(join(REPO_ROOT, "src/gamestream/rtsp/describe.ts"));
    const cycles = findCycles(graph).map((c) => c.map((f) => relative(REPO_ROOT, f)).join(" → "));
    expect(cycles).toEqual([]);
  });
});
