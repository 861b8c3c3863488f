/**
 * snapper, when it is configured for the root: our snapshots are snapper's
 * (pre/post pairs with userdata, number cleanup), so `snapper list` and its
 * other tools see them, and snapper's cleanup knows them.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execFile, firstLine } from "../exec.ts";
import { SnapshotError, type CreateSnapshotOptions, type SnapshotBackend, type SnapshotInfo } from "./backend.ts";
import { btrfsRun, defaultTreeOf, subvolumeId } from "./btrfs.ts";

const TIMEOUT_MS = 120_000;

function userdataArg(u: Record<string, string> | undefined): string[] {
  if (!u || Object.keys(u).length === 0) return [];
  return ["--userdata", Object.entries(u).map(([k, v]) => `${k}=${v.replace(/[,=]/g, "_")}`).join(",")];
}

export class SnapperBackend implements SnapshotBackend {
  readonly name = "snapper" as const;
  constructor(
    readonly root: string,
    private readonly snapper: string,
    private readonly btrfs: string,
    readonly config: string,
  ) {}

  private async run(args: string[]): Promise<string> {
    const r = await execFile([this.snapper, "--no-dbus", "-c", this.config, ...args], { timeoutMs: TIMEOUT_MS });
    if (r.spawnError) throw new SnapshotError("SNAPSHOT_TOOL_MISSING", `cannot run ${this.snapper}: ${r.spawnError}`);
    if (r.code !== 0) throw new SnapshotError("SNAPSHOT_FAILED", `snapper ${args[0]} failed: ${firstLine(r.stderr) || firstLine(r.stdout) || `exit ${r.code}`}`);
    return r.stdout;
  }

  /** The subvolume snapper's config names, or null when snapper does not know the config. */
  static async subvolumeOf(snapper: string, config: string): Promise<string | null> {
    const r = await execFile([snapper, "--no-dbus", "-c", config, "--csvout", "get-config"], { timeoutMs: TIMEOUT_MS });
    if (r.code !== 0) return null;
    for (const line of r.stdout.split("\n")) {
      const [key, value] = line.split(",");
      if (key === "SUBVOLUME" && value) return value.trim();
    }
    return null;
  }

  /** snapper's configs and the subvolume each one snapshots (`snapper list-configs`); empty when snapper is absent. */
  static async configs(snapper: string): Promise<{ config: string; subvolume: string }[]> {
    const r = await execFile([snapper, "--no-dbus", "--csvout", "list-configs"], { timeoutMs: TIMEOUT_MS });
    if (r.code !== 0) return [];
    return r.stdout
      .split("\n")
      .slice(1)
      .map((l) => l.split(","))
      .filter((f) => f.length >= 2 && f[0] && f[1])
      .map(([config, subvolume]) => ({ config: config!.trim(), subvolume: subvolume!.trim() }));
  }

  storeDir(ref: string): string {
    return join(this.dir(ref), "neuron");
  }

  private dir(ref: string): string {
    if (!/^\d+$/.test(ref)) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `no snapshot ${JSON.stringify(ref)}`, { status: 404 });
    return join(this.root, ".snapshots", ref);
  }

  private number(out: string): string {
    const n = out.trim().split("\n").pop()?.trim() ?? "";
    if (!/^\d+$/.test(n)) throw new SnapshotError("SNAPSHOT_FAILED", `snapper printed no snapshot number (${JSON.stringify(out.trim())})`);
    return n;
  }

  async create(opts: CreateSnapshotOptions): Promise<SnapshotInfo> {
    const type = opts.kind === "manual" ? "single" : opts.kind;
    const args = ["create", "--type", type, "--print-number", "--cleanup-algorithm", "number", "--description", opts.description, ...userdataArg(opts.userdata)];
    if (opts.kind === "post") {
      if (!opts.preRef) throw new SnapshotError("SNAPSHOT_FAILED", "a post snapshot needs its pre snapshot");
      args.push("--pre-number", opts.preRef);
    }
    const ref = this.number(await this.run(args));
    return { ref, path: join(this.dir(ref), "snapshot") };
  }

  async list(): Promise<SnapshotInfo[]> {
    const out = await this.run(["--csvout", "list", "--columns", "number"]);
    return out
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^\d+$/.test(l) && l !== "0")
      .map((ref) => ({ ref, path: join(this.dir(ref), "snapshot") }));
  }

  async delete(ref: string): Promise<void> {
    const tree = join(this.dir(ref), "snapshot");
    if (existsSync(tree)) {
      const r = await execFile([this.btrfs, "subvolume", "get-default", this.root], { timeoutMs: TIMEOUT_MS });
      const def = /ID (\d+)/.exec(r.stdout)?.[1];
      if (def && Number(def) === (await subvolumeId(this.btrfs, tree)))
        throw new SnapshotError("SNAPSHOT_IN_USE", `snapshot ${ref} is the root the next boot mounts; roll back to another one first`, { status: 409 });
    }
    await this.run(["delete", ref]);
  }

  async makeNextBoot(ref: string, description: string): Promise<SnapshotInfo> {
    const n = this.number(await this.run(["create", "--from", ref, "--read-write", "--print-number", "--cleanup-algorithm", "number", "--description", description, ...userdataArg({ neuron: "rollback", from: ref })]));
    const path = join(this.dir(n), "snapshot");
    await btrfsRun(this.btrfs, ["subvolume", "set-default", String(await subvolumeId(this.btrfs, path)), this.root]);
    return { ref: n, path };
  }

  async defaultTree(): Promise<string> {
    return defaultTreeOf(this.btrfs, this.root, await this.list());
  }
}
