/**
 * Devices with the AMD reset bug that the vendor-reset module handles
 * (vendor:device → family). The list ships inside the binary; a path in
 * config may replace it.
 */
import embeddedList from "./data/vendor-reset-ids.tsv" with { type: "text" };
import { readBounded } from "./sysfs.ts";
import { AppError } from "../errors.ts";

export type ResetBugList = ReadonlyMap<string, string>;

/** Parses "vendor:device<TAB>family<TAB>name" lines; the header and blank lines are skipped. */
export function parseResetIds(text: string): ResetBugList {
  const out = new Map<string, string>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trimEnd();
    if (!line || line.startsWith("#") || line.startsWith("vendor:device")) continue;
    const [id, family] = line.split("\t");
    if (!id || !/^[0-9a-f]{4}:[0-9a-f]{4}$/.test(id) || !family)
      throw new AppError("RESET_LIST_INVALID", `vendor-reset list line ${i + 1}: expected "vvvv:dddd<TAB>FAMILY"`);
    out.set(id, family);
  }
  return out;
}

export const EMBEDDED_RESET_IDS: ResetBugList = parseResetIds(embeddedList);

export function loadResetIds(path: string | undefined): ResetBugList {
  if (!path) return EMBEDDED_RESET_IDS;
  const r = readBounded(path, 1024 * 1024);
  if (!r.ok) throw new AppError("RESET_LIST_INVALID", `vendor-reset list ${path}: ${r.error}`);
  return parseResetIds(r.text);
}
