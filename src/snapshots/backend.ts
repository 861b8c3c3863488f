/**
 * Snapshot backends: one interface, chosen by probing the root file system.
 *
 * Layout (snapper's, so both backends agree): snapshot N of a root subvolume R is
 * the read-only subvolume R/.snapshots/N/snapshot; R/.snapshots is itself a
 * subvolume, so no snapshot ever holds another. Files the appliance keeps with
 * a snapshot (the /boot files outside the root) go in R/.snapshots/N/neuron/.
 */
import { AppError } from "../errors.ts";

export interface SnapshotInfo {
  /** The backend's reference: the snapshot number. */
  ref: string;
  /** The snapshot's tree. */
  path: string;
}

export interface CreateSnapshotOptions {
  kind: "pre" | "post" | "manual";
  description: string;
  /** For kind post: the ref of its pre snapshot. */
  preRef?: string;
  /** key=value pairs stored with the snapshot (snapper userdata). */
  userdata?: Record<string, string>;
}

export interface SnapshotBackend {
  readonly name: "btrfs" | "snapper";
  /** The root subvolume this backend snapshots. */
  readonly root: string;
  create(opts: CreateSnapshotOptions): Promise<SnapshotInfo>;
  /** Snapshots the backend knows about (numbers and paths), oldest first. */
  list(): Promise<SnapshotInfo[]>;
  delete(ref: string): Promise<void>;
  /** The directory beside the snapshot's tree where the appliance keeps its files. */
  storeDir(ref: string): string;
  /**
   * Makes a writable copy of snapshot `ref` the root the next boot mounts (the
   * file system's default subvolume). Returns the copy; `ref` itself stays as it was.
   */
  makeNextBoot(ref: string, description: string): Promise<SnapshotInfo>;
  /** The tree the file system mounts by default now (the next boot's root). */
  defaultTree(): Promise<string>;
}

export class SnapshotError extends AppError {
  constructor(code: string, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(code, message, { status: opts.status ?? 500, cause: opts.cause });
  }
}

/** statfs magic numbers of the file systems we name in messages. */
export const FS_MAGIC: Record<number, string> = {
  0x9123683e: "btrfs",
  0xef53: "ext4",
  0x58465342: "xfs",
  0x01021994: "tmpfs",
  0x6969: "nfs",
  0x2fc12fc1: "zfs",
  0x794c7630: "overlayfs",
  0x4d44: "vfat",
  0xf2f52010: "f2fs",
};

export function fsTypeName(magic: number): string {
  return FS_MAGIC[magic >>> 0] ?? `type 0x${(magic >>> 0).toString(16)}`;
}
