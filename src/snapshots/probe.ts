/** Which snapshot backend serves a root: snapper when it is configured for it, plain btrfs otherwise; refused elsewhere. */
import { existsSync, statfsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { SnapshotError, fsTypeName, type SnapshotBackend } from "./backend.ts";
import { BtrfsBackend } from "./btrfs.ts";
import { SnapperBackend } from "./snapper.ts";

const BTRFS_MAGIC = 0x9123683e;

export interface ProbeOptions {
  root: string;
  btrfs: string;
  snapper: string;
  /** snapper config to use; null = the one of snapper's configs whose subvolume is the root, if any. */
  snapperConfig: string | null;
}

export function rootFsType(root: string): string {
  return fsTypeName(statfsSync(root).type);
}

export async function probeBackend(opts: ProbeOptions): Promise<SnapshotBackend> {
  const root = resolve(opts.root);
  if (!existsSync(root)) throw new SnapshotError("SNAPSHOT_ROOT_MISSING", `the system root ${root} does not exist`, { status: 422 });
  const type = statfsSync(root).type >>> 0;
  if (type !== BTRFS_MAGIC)
    throw new SnapshotError(
      "SNAPSHOTS_UNSUPPORTED",
      `${root} is on ${fsTypeName(type)}, which cannot take snapshots: updates with rollback need btrfs. ` +
        "Install NeuronOS on btrfs (the installer's default), or convert the file system with btrfs-convert after a backup; " +
        "until then update with `pacman -Syu` yourself, without rollback.",
      { status: 422 },
    );
  // a btrfs subvolume's top directory is inode 256
  if (statSync(root).ino !== 256)
    throw new SnapshotError("SNAPSHOTS_UNSUPPORTED", `${root} is a directory on btrfs, not a subvolume: only a subvolume can be snapshotted (make the root a subvolume, e.g. @)`, { status: 422 });
  if (opts.snapperConfig !== null) {
    const sub = await SnapperBackend.subvolumeOf(opts.snapper, opts.snapperConfig);
    if (sub !== null && resolve(sub) === root) return new SnapperBackend(root, opts.snapper, opts.btrfs, opts.snapperConfig);
    if (sub !== null)
      throw new SnapshotError("SNAPPER_CONFIG_MISMATCH", `snapper config ${opts.snapperConfig} snapshots ${sub}, not ${root}; set updates.snapperConfig to the config of the root (see \`snapper list-configs\`)`, { status: 422 });
  }
  // snapper's own configs: the one whose subvolume is this root
  const hit = (await SnapperBackend.configs(opts.snapper)).find((c) => resolve(c.subvolume) === root);
  if (hit) return new SnapperBackend(root, opts.snapper, opts.btrfs, hit.config);
  return new BtrfsBackend(root, opts.btrfs);
}
