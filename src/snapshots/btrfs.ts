/** btrfs subvolume snapshots, snapper's layout, through the `btrfs` program. */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFile, firstLine } from "../exec.ts";
import { SnapshotError, type CreateSnapshotOptions, type SnapshotBackend, type SnapshotInfo } from "./backend.ts";

const TIMEOUT_MS = 120_000;

export async function btrfsRun(btrfs: string, args: string[]): Promise<string> {
  const r = await execFile([btrfs, ...args], { timeoutMs: TIMEOUT_MS });
  if (r.spawnError) throw new SnapshotError("SNAPSHOT_TOOL_MISSING", `cannot run ${btrfs}: ${r.spawnError}`);
  if (r.code !== 0) throw new SnapshotError("SNAPSHOT_FAILED", `btrfs ${args.slice(0, 2).join(" ")} failed: ${firstLine(r.stderr) || firstLine(r.stdout) || `exit ${r.code}`}`);
  return r.stdout;
}

export async function subvolumeId(btrfs: string, path: string): Promise<number> {
  const out = await btrfsRun(btrfs, ["inspect-internal", "rootid", path]);
  const n = Number(out.trim());
  if (!Number.isInteger(n)) throw new SnapshotError("SNAPSHOT_FAILED", `btrfs rootid of ${path}: unexpected answer ${JSON.stringify(out.trim())}`);
  return n;
}

/** The file system's default subvolume id (what a boot without subvol= mounts). */
export async function defaultSubvolumeId(btrfs: string, path: string): Promise<number> {
  const out = await btrfsRun(btrfs, ["subvolume", "get-default", path]);
  const m = /ID (\d+)/.exec(out);
  if (!m) throw new SnapshotError("SNAPSHOT_FAILED", `btrfs get-default: unexpected answer ${JSON.stringify(out.trim())}`);
  return Number(m[1]);
}

/** Makes R/.snapshots a subvolume of its own when it is not there yet. */
export async function ensureSnapshotsSubvolume(btrfs: string, root: string): Promise<string> {
  const dir = join(root, ".snapshots");
  if (!existsSync(dir)) await btrfsRun(btrfs, ["subvolume", "create", dir]);
  return dir;
}

/** Tree of the default subvolume among root and the snapshots (or a description when it is none of them). */
export async function defaultTreeOf(btrfs: string, root: string, snapshots: SnapshotInfo[]): Promise<string> {
  const id = await defaultSubvolumeId(btrfs, root);
  if (id === 5) return `(top level of the file system holding ${root})`;
  for (const p of [root, ...snapshots.map((s) => s.path)]) {
    if (existsSync(p) && (await subvolumeId(btrfs, p)) === id) return p;
  }
  return `(subvolume ${id})`;
}

interface Info {
  kind: string;
  description: string;
  preRef?: string;
  userdata?: Record<string, string>;
  createdAt: string;
}

export class BtrfsBackend implements SnapshotBackend {
  readonly name = "btrfs" as const;
  constructor(
    readonly root: string,
    private readonly btrfs: string,
  ) {}

  private dir(ref: string): string {
    if (!/^\d+$/.test(ref)) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `no snapshot ${JSON.stringify(ref)}`, { status: 404 });
    return join(this.root, ".snapshots", ref);
  }

  storeDir(ref: string): string {
    return join(this.dir(ref), "neuron");
  }

  private nextNumber(base: string): number {
    let max = 0;
    for (const e of readdirSync(base)) if (/^\d+$/.test(e)) max = Math.max(max, Number(e));
    return max + 1;
  }

  private async snapshotOf(source: string, opts: { readonly: boolean; info: Info }): Promise<SnapshotInfo> {
    const base = await ensureSnapshotsSubvolume(this.btrfs, this.root);
    const n = this.nextNumber(base);
    const dir = join(base, String(n));
    mkdirSync(dir);
    try {
      await btrfsRun(this.btrfs, ["subvolume", "snapshot", ...(opts.readonly ? ["-r"] : []), source, join(dir, "snapshot")]);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    writeFileSync(join(dir, "info.json"), JSON.stringify(opts.info, null, 2) + "\n");
    return { ref: String(n), path: join(dir, "snapshot") };
  }

  create(opts: CreateSnapshotOptions): Promise<SnapshotInfo> {
    return this.snapshotOf(this.root, {
      readonly: true,
      info: { kind: opts.kind, description: opts.description, preRef: opts.preRef, userdata: opts.userdata, createdAt: new Date().toISOString() },
    });
  }

  async list(): Promise<SnapshotInfo[]> {
    const base = join(this.root, ".snapshots");
    if (!existsSync(base)) return [];
    return readdirSync(base)
      .filter((e) => /^\d+$/.test(e) && existsSync(join(base, e, "snapshot")))
      .map(Number)
      .sort((a, b) => a - b)
      .map((n) => ({ ref: String(n), path: join(base, String(n), "snapshot") }));
  }

  info(ref: string): Info | null {
    try {
      return JSON.parse(readFileSync(join(this.dir(ref), "info.json"), "utf8")) as Info;
    } catch {
      return null;
    }
  }

  async delete(ref: string): Promise<void> {
    const dir = this.dir(ref);
    const tree = join(dir, "snapshot");
    if (!existsSync(dir)) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `no snapshot ${ref} under ${this.root}/.snapshots`, { status: 404 });
    if (existsSync(tree)) {
      const [id, def] = await Promise.all([subvolumeId(this.btrfs, tree), defaultSubvolumeId(this.btrfs, this.root)]);
      if (id === def) throw new SnapshotError("SNAPSHOT_IN_USE", `snapshot ${ref} is the root the next boot mounts; roll back to another one first`, { status: 409 });
      await btrfsRun(this.btrfs, ["subvolume", "delete", tree]);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  async makeNextBoot(ref: string, description: string): Promise<SnapshotInfo> {
    const source = join(this.dir(ref), "snapshot");
    if (!existsSync(source)) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `snapshot ${ref} has no tree at ${source}`, { status: 404 });
    const copy = await this.snapshotOf(source, { readonly: false, info: { kind: "rollback", description, preRef: ref, createdAt: new Date().toISOString() } });
    const id = await subvolumeId(this.btrfs, copy.path);
    await btrfsRun(this.btrfs, ["subvolume", "set-default", String(id), this.root]);
    return copy;
  }

  async defaultTree(): Promise<string> {
    return defaultTreeOf(this.btrfs, this.root, await this.list());
  }
}
