/** Snapshots of a system root, recorded in the database: create, list, delete, diff. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SnapshotRow, SnapshotsRepo } from "../db/repos/updates.ts";
import { SnapshotError, type SnapshotBackend } from "./backend.ts";
import { bootIsSeparate, keepBootFiles, type BootFile } from "./boot-files.ts";
import { diffTrees } from "./diff.ts";
import type { SnapshotView } from "./model.ts";
import { probeBackend } from "./probe.ts";

export interface SnapshotSettings {
  btrfs: string;
  snapper: string;
  snapperConfig: string | null;
  /** The boot directory relative to the root. */
  bootDir: string;
}

export interface CreateOptions {
  kind: "pre" | "post" | "manual";
  description: string;
  updateId?: number;
  pre?: SnapshotRow;
  userdata?: Record<string, string>;
}

export class SnapshotService {
  private readonly backends = new Map<string, SnapshotBackend>();
  constructor(
    private readonly repo: SnapshotsRepo,
    private readonly settings: SnapshotSettings,
  ) {}

  async backend(root: string): Promise<SnapshotBackend> {
    const known = this.backends.get(root);
    if (known) return known;
    const b = await probeBackend({ root, btrfs: this.settings.btrfs, snapper: this.settings.snapper, snapperConfig: this.settings.snapperConfig });
    this.backends.set(root, b);
    return b;
  }

  bootDir(root: string): string {
    return join(root, this.settings.bootDir);
  }

  async create(root: string, opts: CreateOptions): Promise<SnapshotRow> {
    const backend = await this.backend(root);
    const info = await backend.create({
      kind: opts.kind,
      description: opts.description,
      preRef: opts.pre?.backendRef ?? undefined,
      userdata: { neuron: opts.kind, ...(opts.updateId ? { update: String(opts.updateId) } : {}), ...opts.userdata },
    });
    const bootDir = this.bootDir(root);
    let bootFiles: BootFile[] = [];
    let bootStore: string | null = null;
    try {
      if (bootIsSeparate(root, bootDir)) {
        bootStore = join(backend.storeDir(info.ref), "boot");
        bootFiles = keepBootFiles(bootDir, bootStore);
      }
    } catch (err) {
      await backend.delete(info.ref).catch(() => undefined);
      throw err;
    }
    return this.repo.insert({
      backend: backend.name,
      backendRef: info.ref,
      label: opts.description,
      kind: opts.kind,
      root,
      path: info.path,
      bootFiles: JSON.stringify(bootFiles),
      bootStore,
      preId: opts.pre?.id ?? null,
      parentUpdateId: opts.updateId ?? null,
    });
  }

  /** Records a backend snapshot made for a rollback (the writable copy the next boot mounts). */
  recordRollback(root: string, backend: SnapshotBackend, ref: string, path: string, label: string, updateId: number | null, from: SnapshotRow): SnapshotRow {
    return this.repo.insert({ backend: backend.name, backendRef: ref, label, kind: "rollback", root, path, preId: from.id, parentUpdateId: updateId, bootFiles: from.bootFiles, bootStore: from.bootStore });
  }

  get(id: number): SnapshotRow {
    const row = this.repo.get(id);
    if (!row) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `no snapshot ${id}`, { status: 404 });
    return row;
  }

  /** Live snapshots of a root; rows whose tree is gone (snapper's own cleanup, a manual delete) are marked deleted. */
  list(root: string): SnapshotRow[] {
    return this.repo.live(root).filter((row) => {
      if (row.path === null || existsSync(row.path)) return true;
      this.repo.markDeleted(row.id);
      return false;
    });
  }

  async delete(id: number): Promise<void> {
    const row = this.get(id);
    if (row.deletedAt) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `snapshot ${id} was deleted already`, { status: 404 });
    const backend = await this.backend(row.root);
    if (row.backendRef && existsSync(join(row.root, ".snapshots", row.backendRef))) await backend.delete(row.backendRef);
    this.repo.markDeleted(id);
  }

  diff(fromId: number, toId: number) {
    const a = this.get(fromId);
    const b = this.get(toId);
    for (const s of [a, b]) if (!s.path || s.deletedAt || !existsSync(s.path)) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `snapshot ${s.id} has no tree any more`, { status: 404 });
    return { from: fromId, to: toId, ...diffTrees(a.path!, b.path!) };
  }

  static bootManifest(row: SnapshotRow): BootFile[] {
    return JSON.parse(row.bootFiles) as BootFile[];
  }

  view(row: SnapshotRow): SnapshotView {
    return {
      id: row.id,
      backend: row.backend,
      ref: row.backendRef,
      kind: row.kind,
      label: row.label,
      createdAt: row.createdAt.toISOString(),
      root: row.root,
      path: row.path,
      updateId: row.parentUpdateId,
      preId: row.preId,
      bootFiles: SnapshotService.bootManifest(row),
      deleted: row.deletedAt !== null,
    };
  }
}

export function readJsonFile<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return null;
  }
}
