/** The report in sentences (what the CLI prints and the console shows). */
import type { PlanItem, Report } from "./model.ts";

export function humanBytes(n: number): string {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${u[i]}`;
}

export function reportWords(r: Report, items: PlanItem[]): string {
  const lines: string[] = [];
  const verb = r.status === "done" ? "Moved" : "So far moved";
  lines.push(`${verb} ${r.copied.files} file(s), ${humanBytes(r.copied.bytes)}; every one verified by checksum after the copy.`);
  if (r.skipped.files) lines.push(`Left ${r.skipped.files} file(s) as they were: ${Object.entries(r.skipped.reasons).map(([k, v]) => `${v} ${k}`).join(", ")}.`);
  if (r.renamed.length) lines.push(`Renamed ${r.renamed.length} (Windows names, conflicts): e.g. ${r.renamed[0]!.from} → ${r.renamed[0]!.to}.`);
  if (r.failed.length) lines.push(`${r.failed.length} file(s) failed: e.g. ${r.failed[0]!.path}: ${r.failed[0]!.error}.`);
  if (r.unreadable.length) lines.push(`${r.unreadable.length} could not be read: e.g. ${r.unreadable[0]!.path} (${r.unreadable[0]!.error}).`);
  const wm = r.windowsMetadata;
  if (wm?.files) {
    const attrs = wm.items.filter((i) => i.attributes.length).length;
    const streams = wm.items.reduce((a, i) => a + i.streams.length, 0);
    lines.push(`${attrs} item(s) had Windows attributes (hidden, system, read-only) and ${streams} alternate data stream(s) were attached: kept as user.ntfs.attrib / user.ntfs.ads.* extended attributes${wm.lost ? `; ${wm.lost} could not be kept (see the report)` : ""}. Linux has no hidden flag: those files show in file managers.`);
  }
  if (r.notFollowed.length) lines.push(`${r.notFollowed.length} link(s) (junctions, symlinks) were not followed.`);
  for (const c of r.cannotMove) lines.push(`Cannot move ${c.label}: ${c.why}.${c.livePath ? ` Instead: ${c.livePath.hint}.` : ""}`);
  for (const x of r.reinstall) {
    const label = items.find((i) => i.id === x.item)?.label ?? x.item;
    lines.push(`Reinstall ${label}: ${x.ids.join(", ")}${x.kind === "vscode-extension" ? " (code --install-extension ID)" : " (from the browser's store)"}.`);
  }
  if (r.status === "interrupted") lines.push("The run was interrupted: run it again to resume where it stopped.");
  if (r.status === "done") lines.push(`Undo with \`neuron-appliance migrate undo ${r.id}\`.`);
  return lines.join("\n");
}
