/**
 * Windows names on Linux. Names Windows itself cannot use — reserved device names (CON, NUL,
 * COM1, ...), trailing dots and spaces — only appear through POSIX-namespace tools and trip up
 * anything that carries them back to Windows: they are renamed. A name longer than Linux's 255
 * bytes (NTFS counts 255 UTF-16 units, up to 765 bytes of UTF-8) is shortened, keeping its
 * extension, with a short hash so two long names stay apart.
 */
import { createHash } from "node:crypto";

const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
const NAME_MAX = 255;

export function safeName(name: string): { name: string; reason: string | null } {
  let out = name;
  const reasons: string[] = [];
  const trimmed = out.replace(/[. ]+$/, "");
  if (trimmed !== out && trimmed.length > 0) {
    out = trimmed;
    reasons.push("trailing dots or spaces");
  }
  if (RESERVED.test(out)) {
    out = `_${out}`;
    reasons.push("a reserved Windows device name");
  }
  if (Buffer.byteLength(out, "utf8") > NAME_MAX) {
    const dot = out.lastIndexOf(".");
    const ext = dot > 0 && out.length - dot <= 16 ? out.slice(dot) : "";
    const tag = "~" + createHash("sha256").update(name).digest("hex").slice(0, 8);
    let stem = out.slice(0, out.length - ext.length);
    while (Buffer.byteLength(stem + tag + ext, "utf8") > NAME_MAX) stem = [...stem].slice(0, -1).join("");
    out = stem + tag + ext;
    reasons.push("longer than 255 bytes");
  }
  return { name: out, reason: reasons.length ? reasons.join(", ") : null };
}

/** "name (2).ext", "name (3).ext", ... the first that `taken` refuses. */
export function renamed(name: string, taken: (candidate: string) => boolean): string {
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot) : "";
  for (let i = 2; i < 10_000; i++) {
    const c = `${stem} (${i})${ext}`;
    if (!taken(c)) return c;
  }
  return `${stem} (${Date.now()})${ext}`;
}
