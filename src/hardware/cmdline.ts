/** Kernel command line handling shared by detection (what is active) and VFIO (what to write). */

export const ACS_OVERRIDE_PARAM = "pcie_acs_override=downstream,multifunction";

/** Splits a command line into words, keeping double-quoted values together. */
export function splitCmdline(cmdline: string): string[] {
  const out: string[] = [];
  const re = /(?:[^\s"]+|"[^"]*")+/g;
  for (const m of cmdline.matchAll(re)) out.push(m[0]);
  return out;
}

export const paramKey = (word: string) => {
  const i = word.indexOf("=");
  return i < 0 ? word : word.slice(0, i);
};

/** Values of a key (the kernel treats - and _ alike in parameter names). */
export function paramValues(words: string[], key: string): string[] {
  const norm = (k: string) => k.replace(/-/g, "_");
  return words.filter((w) => norm(paramKey(w)) === norm(key)).map((w) => (w.includes("=") ? w.slice(w.indexOf("=") + 1) : ""));
}

export const hasParam = (words: string[], word: string) => {
  const key = paramKey(word);
  const value = word.includes("=") ? word.slice(word.indexOf("=") + 1) : "";
  return paramValues(words, key).includes(value);
};

/**
 * Sets each wanted parameter: an existing word with the same key is replaced in
 * place (first occurrence, later duplicates dropped), a new one is appended.
 * Words not named keep their order, so applying twice gives the same result.
 */
export function mergeParams(words: string[], wanted: string[], remove: string[] = []): string[] {
  const norm = (k: string) => k.replace(/-/g, "_");
  const wantedByKey = new Map(wanted.map((w) => [norm(paramKey(w)), w]));
  const removeKeys = new Set(remove.map(norm));
  const out: string[] = [];
  const placed = new Set<string>();
  for (const w of words) {
    const k = norm(paramKey(w));
    if (removeKeys.has(k)) continue;
    const want = wantedByKey.get(k);
    if (want === undefined) out.push(w);
    else if (!placed.has(k)) {
      out.push(want);
      placed.add(k);
    }
  }
  for (const [k, w] of wantedByKey) if (!placed.has(k)) out.push(w);
  return out;
}
