/**
 * What the first bytes of a partition or image say, read without mounting: NTFS or BitLocker
 * (boot sector OEM id), and the NTFS $Volume flags (dirty bit) from MFT record 3.
 * Everything read is untrusted: every offset is bounds-checked before use.
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";

export type VolumeKind = "ntfs" | "bitlocker" | "unknown";

export interface NtfsGeometry {
  bytesPerSector: number;
  clusterBytes: number;
  mftOffset: number;
  mftMirrOffset: number;
  recordBytes: number;
}

/** NTFS $Volume flag bits (VOLUME_INFORMATION.flags). */
export const VOLUME_IS_DIRTY = 0x0001;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, offset);
  return buf.subarray(0, n);
}

export function volumeKind(boot: Buffer): VolumeKind {
  if (boot.length < 11) return "unknown";
  const oem = boot.subarray(3, 11).toString("latin1");
  if (oem === "-FVE-FS-") return "bitlocker";
  if (oem === "NTFS    ") return "ntfs";
  return "unknown";
}

export function ntfsGeometry(boot: Buffer): NtfsGeometry | null {
  if (boot.length < 512 || volumeKind(boot) !== "ntfs") return null;
  const bytesPerSector = boot.readUInt16LE(0x0b);
  if (![512, 1024, 2048, 4096].includes(bytesPerSector)) return null;
  const spc = boot.readUInt8(0x0d);
  const sectorsPerCluster = spc > 0x80 ? 2 ** (256 - spc) : spc;
  if (sectorsPerCluster < 1 || sectorsPerCluster > 4096) return null;
  const clusterBytes = bytesPerSector * sectorsPerCluster;
  const mftLcn = Number(boot.readBigUInt64LE(0x30));
  const mirrLcn = Number(boot.readBigUInt64LE(0x38));
  const cpr = boot.readInt8(0x40);
  const recordBytes = cpr < 0 ? 2 ** -cpr : cpr * clusterBytes;
  if (recordBytes < 256 || recordBytes > 65536 || !Number.isSafeInteger(mftLcn * clusterBytes)) return null;
  return { bytesPerSector, clusterBytes, mftOffset: mftLcn * clusterBytes, mftMirrOffset: mirrLcn * clusterBytes, recordBytes };
}

/**
 * Applies the update sequence fixups of one MFT record in place; false if it is not sound (a
 * record covers at least one sector, so its array holds the number and at least one entry).
 */
export function fixup(rec: Buffer, sector: number): boolean {
  if (rec.length < 48 || rec.toString("latin1", 0, 4) !== "FILE") return false;
  const usaOff = rec.readUInt16LE(4);
  const usaCount = rec.readUInt16LE(6);
  if (usaCount < 2 || usaOff + usaCount * 2 > rec.length || (usaCount - 1) * sector > rec.length) return false;
  const usn = rec.readUInt16LE(usaOff);
  for (let i = 1; i < usaCount; i++) {
    const end = i * sector - 2;
    if (rec.readUInt16LE(end) !== usn) return false;
    rec.writeUInt16LE(rec.readUInt16LE(usaOff + 2 * i), end);
  }
  return true;
}

/** Offset within the record of VOLUME_INFORMATION.flags (resident attribute 0x70), or -1. */
function volumeFlagsOffset(rec: Buffer): number {
  let off = rec.readUInt16LE(0x14);
  for (let guard = 0; guard < 64 && off + 24 <= rec.length; guard++) {
    const type = rec.readUInt32LE(off);
    if (type === 0xffffffff) return -1;
    const len = rec.readUInt32LE(off + 4);
    if (len < 24 || off + len > rec.length) return -1;
    if (type === 0x70 && rec.readUInt8(off + 8) === 0) {
      const vlen = rec.readUInt32LE(off + 0x10);
      const voff = rec.readUInt16LE(off + 0x14);
      if (vlen >= 12 && off + voff + 12 <= off + len) return off + voff + 10;
      return -1;
    }
    off += len;
  }
  return -1;
}

export interface VolumeProbe {
  kind: VolumeKind;
  /** NTFS $Volume flags, null where they could not be read. */
  volumeFlags: number | null;
  dirty: boolean;
}

/** Reads the boot sector and, for NTFS, the $Volume flags of a device or image file. */
export function probeVolume(path: string): VolumeProbe {
  const fd = openSync(path, "r");
  try {
    const boot = readAt(fd, 0, 512);
    const kind = volumeKind(boot);
    if (kind !== "ntfs") return { kind, volumeFlags: null, dirty: false };
    const g = ntfsGeometry(boot);
    if (!g) return { kind, volumeFlags: null, dirty: false };
    const rec = readAt(fd, g.mftOffset + 3 * g.recordBytes, g.recordBytes);
    if (rec.length !== g.recordBytes || !fixup(rec, g.bytesPerSector)) return { kind, volumeFlags: null, dirty: false };
    const at = volumeFlagsOffset(rec);
    if (at < 0) return { kind, volumeFlags: null, dirty: false };
    const flags = rec.readUInt16LE(at);
    return { kind, volumeFlags: flags, dirty: (flags & VOLUME_IS_DIRTY) !== 0 };
  } finally {
    closeSync(fd);
  }
}

/**
 * Sets or clears the dirty bit in $Volume (in $MFT and $MFTMirr) of an unmounted image: what
 * Windows does while a volume is in use. Used to make test volumes; never on a user's disk.
 */
export function setVolumeDirty(path: string, dirty: boolean): void {
  const fd = openSync(path, "r+");
  try {
    const boot = readAt(fd, 0, 512);
    const g = ntfsGeometry(boot);
    if (!g) throw new Error(`${path}: not an NTFS volume`);
    for (const base of [g.mftOffset, g.mftMirrOffset]) {
      const at = base + 3 * g.recordBytes;
      const raw = readAt(fd, at, g.recordBytes);
      const rec = Buffer.from(raw);
      if (!fixup(rec, g.bytesPerSector)) throw new Error(`${path}: $Volume record unreadable`);
      const off = volumeFlagsOffset(rec);
      if (off < 0) throw new Error(`${path}: no VOLUME_INFORMATION`);
      if ((off + 2) % g.bytesPerSector === 0) throw new Error("flags under an update sequence slot");
      const flags = rec.readUInt16LE(off);
      raw.writeUInt16LE(dirty ? flags | VOLUME_IS_DIRTY : flags & ~VOLUME_IS_DIRTY, off);
      writeSync(fd, raw, 0, raw.length, at);
    }
  } finally {
    closeSync(fd);
  }
}
