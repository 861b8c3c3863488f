/**
 * What NTFS keeps beside a file's data, read straight from the volume's $MFT (one sequential
 * read, no per-file request through the FUSE driver): the Windows attributes ($STANDARD_INFORMATION
 * flags: read-only, hidden, system, ...) and the named data streams (alternate data streams,
 * e.g. Zone.Identifier) of every file and folder, by path. Everything read is untrusted: each
 * record's fixups are checked and every offset is bounds-checked before use; a record that does
 * not parse is skipped, a volume whose $MFT cannot be located yields null (nothing claimed).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { fixup, ntfsGeometry } from "./ntfs-volume.ts";

/** FILE_ATTRIBUTE_* bits worth carrying (the rest describe storage: archive, compressed, sparse...). */
export const ATTR_READONLY = 0x1;
export const ATTR_HIDDEN = 0x2;
export const ATTR_SYSTEM = 0x4;
const KEPT_ATTRS = ATTR_READONLY | ATTR_HIDDEN | ATTR_SYSTEM;

export interface EntryMeta {
  /** FILE_ATTRIBUTE_* flags as NTFS stores them (ntfs-3g's system.ntfs_attrib_be). */
  attrib: number;
  /** Named data streams: name and size in bytes. */
  streams: { name: string; size: number }[];
}

export const attributeNames = (a: number): string[] => [a & ATTR_READONLY ? "read-only" : "", a & ATTR_HIDDEN ? "hidden" : "", a & ATTR_SYSTEM ? "system" : ""].filter(Boolean);

/** Worth a note: a kept attribute or a named stream. */
export const notable = (m: EntryMeta | null | undefined): m is EntryMeta => Boolean(m && ((m.attrib & KEPT_ATTRS) !== 0 || m.streams.length));

const ROOT = 5;
const MAX_RECORDS = 64 << 20;
const CHUNK = 4 << 20;

interface Attr {
  type: number;
  nonResident: boolean;
  name: string;
  /** Resident: the value's offset and length within the record. */
  valueOff: number;
  valueLen: number;
  /** Non-resident: lowest VCN, data size, offset of the mapping pairs. */
  lowestVcn: bigint;
  dataSize: number;
  pairsOff: number;
  end: number;
}

function* attributes(rec: Buffer): Generator<Attr> {
  let off = rec.readUInt16LE(0x14);
  const used = Math.min(rec.readUInt32LE(0x18), rec.length);
  for (let guard = 0; guard < 512 && off + 16 <= used; guard++) {
    const type = rec.readUInt32LE(off);
    if (type === 0xffffffff) return;
    const len = rec.readUInt32LE(off + 4);
    if (len < 16 || len % 8 || off + len > used) return;
    const nonResident = rec.readUInt8(off + 8) !== 0;
    const nameLen = rec.readUInt8(off + 9);
    const nameOff = rec.readUInt16LE(off + 10);
    let name = "";
    if (nameLen) {
      if (nameOff + nameLen * 2 > len) return;
      name = rec.toString("utf16le", off + nameOff, off + nameOff + nameLen * 2);
    }
    const a: Attr = { type, nonResident, name, valueOff: 0, valueLen: 0, lowestVcn: 0n, dataSize: 0, pairsOff: 0, end: off + len };
    if (!nonResident) {
      if (len < 24) return;
      a.valueLen = rec.readUInt32LE(off + 0x10);
      a.valueOff = off + rec.readUInt16LE(off + 0x14);
      if (a.valueOff + a.valueLen > off + len) return;
    } else {
      if (len < 0x40) return;
      a.lowestVcn = rec.readBigUInt64LE(off + 0x10);
      const size = rec.readBigUInt64LE(off + 0x30);
      a.dataSize = size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(size);
      a.pairsOff = off + rec.readUInt16LE(off + 0x20);
      if (a.pairsOff >= off + len) return;
    }
    yield a;
    off += len;
  }
}

/** Decodes mapping pairs into [byte offset on the volume, byte length] runs (sparse runs dropped). */
function runs(rec: Buffer, at: number, end: number, cluster: number): [number, number][] | null {
  const out: [number, number][] = [];
  let lcn = 0;
  for (let p = at; p < end; ) {
    const h = rec[p]!;
    if (h === 0) return out;
    const ls = h & 0xf;
    const os = h >> 4;
    if (ls === 0 || ls > 8 || os > 8 || p + 1 + ls + os > end) return null;
    let len = 0;
    for (let i = 0; i < ls; i++) len += rec[p + 1 + i]! * 2 ** (8 * i);
    if (os) {
      let d = 0;
      for (let i = 0; i < os; i++) d += rec[p + 1 + ls + i]! * 2 ** (8 * i);
      if (rec[p + ls + os]! & 0x80) d -= 2 ** (8 * os);
      lcn += d;
      if (lcn < 0 || !Number.isSafeInteger(lcn * cluster)) return null;
      out.push([lcn * cluster, len * cluster]);
    }
    p += 1 + ls + os;
  }
  return out;
}

interface Node {
  parent: number;
  name: string;
}

/**
 * Reads the $MFT of an NTFS partition or image (`device`) and returns the notable entries (a kept
 * attribute or a named stream) by path relative to the volume root, `/`-separated as ntfs-3g
 * shows them; null when the $MFT cannot be read.
 */
export function readNtfsMeta(device: string): Map<string, EntryMeta> | null {
  let fd: number;
  try {
    fd = openSync(device, "r");
  } catch {
    return null;
  }
  try {
    const boot = Buffer.alloc(512);
    if (readSync(fd, boot, 0, 512, 0) !== 512) return null;
    const g = ntfsGeometry(boot);
    if (!g) return null;
    const rec0 = Buffer.alloc(g.recordBytes);
    if (readSync(fd, rec0, 0, rec0.length, g.mftOffset) !== rec0.length || !fixup(rec0, g.bytesPerSector)) return null;
    let mftRuns: [number, number][] | null = null;
    for (const a of attributes(rec0)) {
      // an $MFT described through an attribute list (a very fragmented one) is not read here
      if (a.type === 0x20) return null;
      if (a.type === 0x80 && !a.name && a.nonResident && a.lowestVcn === 0n) mftRuns = runs(rec0, a.pairsOff, a.end, g.clusterBytes);
    }
    if (!mftRuns || !mftRuns.length) return null;
    const nodes = new Map<number, Node>();
    const found = new Map<number, EntryMeta>();
    const names = new Map<number, Node[]>();
    let recNo = 0;
    const buf = Buffer.alloc(CHUNK - (CHUNK % g.recordBytes));
    for (const [start, length] of mftRuns) {
      for (let done = 0; done < length; ) {
        const want = Math.min(buf.length, length - done);
        const got = readSync(fd, buf, 0, want, start + done);
        if (got <= 0) break;
        for (let o = 0; o + g.recordBytes <= got; o += g.recordBytes, recNo++) {
          if (recNo > MAX_RECORDS) return null;
          const rec = buf.subarray(o, o + g.recordBytes);
          if (!fixup(rec, g.bytesPerSector)) continue;
          const flags = rec.readUInt16LE(0x16);
          if (!(flags & 1)) continue;
          // an extension record's attributes belong to its base record
          const base = Number(rec.readBigUInt64LE(0x20) & 0xffffffffffffn);
          const owner = base || recNo;
          for (const a of attributes(rec)) {
            if (a.type === 0x10 && !a.nonResident && a.valueLen >= 0x24) {
              const attrib = rec.readUInt32LE(a.valueOff + 0x20);
              const m = found.get(owner) ?? { attrib: 0, streams: [] };
              m.attrib = attrib;
              found.set(owner, m);
            } else if (a.type === 0x30 && !a.nonResident && a.valueLen >= 0x42) {
              const parent = Number(rec.readBigUInt64LE(a.valueOff) & 0xffffffffffffn);
              const n = rec.readUInt8(a.valueOff + 0x40);
              const ns = rec.readUInt8(a.valueOff + 0x41);
              if (ns === 2 || 0x42 + n * 2 > a.valueLen) continue; // the DOS 8.3 alias
              const name = rec.toString("utf16le", a.valueOff + 0x42, a.valueOff + 0x42 + n * 2);
              const l = names.get(owner) ?? [];
              l.push({ parent, name });
              names.set(owner, l);
            } else if (a.type === 0x80 && a.name && (!a.nonResident || a.lowestVcn === 0n)) {
              const m = found.get(owner) ?? { attrib: 0, streams: [] };
              m.streams.push({ name: a.name, size: a.nonResident ? a.dataSize : a.valueLen });
              found.set(owner, m);
            }
          }
        }
        done += got;
      }
    }
    for (const [r, l] of names) nodes.set(r, l[0]!);
    const pathOf = (r: number, depth = 0): string | null => {
      if (r === ROOT) return "";
      const n = nodes.get(r);
      if (!n || depth > 512 || n.parent === r) return null;
      const p = pathOf(n.parent, depth + 1);
      return p === null ? null : p ? `${p}/${n.name}` : n.name;
    };
    const out = new Map<string, EntryMeta>();
    for (const [r, m] of found) {
      if (r < 16 || !notable(m)) continue; // the metadata files ($MFT, $Boot, ...) are not the user's
      m.attrib &= KEPT_ATTRS;
      // every hard link's path
      for (const n of names.get(r) ?? []) {
        const p = pathOf(n.parent);
        if (p !== null) out.set(p ? `${p}/${n.name}` : n.name, m);
      }
    }
    return out;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** What became of one entry's attributes and streams on the target (kept in its journal row). */
export interface MetaOutcome extends EntryMeta {
  /** The attributes were written as user.ntfs.attrib; else why not. */
  attribKept: boolean | null;
  attribWhy: string | null;
  streamsKept: { name: string; size: number; kept: boolean; why: string | null }[];
}

/** Target extended attribute holding the Windows attributes: 4 bytes, big-endian, as ntfs-3g's system.ntfs_attrib_be. */
export const ATTRIB_XATTR = "user.ntfs.attrib";
/** Target extended attribute prefix of a named stream: user.ntfs.ads.<stream name>. */
export const ADS_XATTR_PREFIX = "user.ntfs.ads.";

const ERRNO: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 5: "EIO", 7: "E2BIG", 13: "EACCES", 17: "EEXIST", 28: "ENOSPC", 34: "ERANGE", 61: "ENODATA", 95: "ENOTSUP" };
function why(errno: number, stage: string): string {
  const name = ERRNO[errno] ?? `errno ${errno}`;
  if (errno === 95) return "the target file system keeps no user extended attributes";
  if (errno === 34) return "larger than an extended attribute can hold (64 KiB)";
  if (errno === 7 || errno === 28) return `the target file system has no room for it as an extended attribute (${name})`;
  return `${stage} failed (${name})`;
}

export interface XattrOps {
  copyXattr(src: string, srcName: string, dst: string, dstName: string): { ok: boolean; stage: string; errno: number };
  setXattr(path: string, name: string, value: Uint8Array): number;
}

/**
 * Carries one entry's Windows attributes and named streams onto its target as user.ntfs.*
 * extended attributes. `streamsReadable`: the source shows streams as user.<name> attributes
 * (ntfs-3g's streams_interface=xattr); else they are reported lost with the reason. An attribute
 * already there (a resumed run) counts as kept: XATTR_CREATE never replaces one.
 */
export function carryMeta(x: XattrOps, srcAbs: string, target: string, meta: EntryMeta, streamsReadable: boolean): MetaOutcome {
  const out: MetaOutcome = { ...meta, attribKept: null, attribWhy: null, streamsKept: [] };
  if (meta.attrib) {
    const v = new Uint8Array([meta.attrib >>> 24, (meta.attrib >>> 16) & 0xff, (meta.attrib >>> 8) & 0xff, meta.attrib & 0xff]);
    const e = x.setXattr(target, ATTRIB_XATTR, v);
    out.attribKept = e === 0 || e === 17;
    out.attribWhy = out.attribKept ? null : why(e, "writing");
  }
  for (const s of meta.streams) {
    if (!streamsReadable) {
      out.streamsKept.push({ ...s, kept: false, why: "the volume's driver (ntfs3) does not show named streams; mounted by ntfs-3g they would be carried" });
      continue;
    }
    if (s.size > 65536) {
      out.streamsKept.push({ ...s, kept: false, why: "larger than an extended attribute can hold (64 KiB)" });
      continue;
    }
    const r = x.copyXattr(srcAbs, `user.${s.name}`, target, `${ADS_XATTR_PREFIX}${s.name}`);
    const kept = r.ok || (r.stage === "write" && r.errno === 17);
    out.streamsKept.push({ ...s, kept, why: kept ? null : why(r.errno, `${r.stage === "read" ? "reading the stream" : r.stage === "verify" ? "reading it back" : "writing it"}`) });
  }
  return out;
}
