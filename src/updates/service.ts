/**
 * System updates inside snapshots: pre snapshot → one `pacman -Syu` → post
 * snapshot → health checks → ok, or a rollback the next boot mounts. Also the
 * verification at the next boot (boot counting), recovery of an update a crash
 * interrupted, rollback by hand and retention.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import type { Config } from "../config.ts";
import type { SnapshotRow, UpdateRow, UpdatesRepo } from "../db/repos/updates.ts";
import { AppError } from "../errors.ts";
import { execFile } from "../exec.ts";
import type { Logger } from "../log.ts";
import { bootIsSeparate } from "../snapshots/boot-files.ts";
import { SnapshotService } from "../snapshots/service.ts";
import { armBootCounting, blessBoot, readBootCounter } from "./bootcount.ts";
import { failedRequired, runChecks, type CheckResult } from "./checks.ts";
import type { UpdateEvent, UpdateView } from "./model.ts";
import { installedPackages, PacmanProgress, packageChanges, type PackageChange } from "./pacman.ts";
import { preflight, processAlive, processStart } from "./preflight.ts";
import { pruneSnapshots } from "./retention.ts";
import { carryOver, planKeepOut, rollbackReason, rollbackTo } from "./rollback.ts";
import type { UpdatesSettings } from "./settings.ts";

const LOG_LIMIT = 256 * 1024;

export interface RunOptions {
  root?: string;
  /** A shell command instead of the configured package command. */
  command?: string;
  /** Extra required check commands. */
  checks?: string[];
  /** Schedule a reboot after a rollback (default true when a reboot command is configured). */
  reboot?: boolean;
  onEvent?: (e: UpdateEvent) => void;
  /** Called once the update has its history row (before pacman starts). */
  onStarted?: (id: number) => void;
}

export class UpdatesService {
  private readonly settings: UpdatesSettings;
  constructor(
    private readonly config: Config,
    readonly snapshots: SnapshotService,
    private readonly repo: UpdatesRepo,
    private readonly log: Logger,
    /** Called before the appliance's state is copied into a rolled-back root (a WAL checkpoint). */
    private readonly flushState: () => void = () => undefined,
  ) {
    this.settings = config.updates;
  }

  /** What stays out of rollback under a root: the configured paths, and the state dir when it lives under the root. */
  keepOut(root: string): string[] {
    const out = [...this.settings.keepOut];
    const rel = relative(root, this.config.stateDir);
    if (!rel.startsWith("..") && !isAbsolute(rel) && rel !== "") {
      const p = "/" + rel;
      if (!out.includes(p)) out.push(p);
    }
    return out;
  }

  /** What a snapshot of the root covers, and what it leaves out (reported with every update). */
  coverage(root: string) {
    const bootDir = this.bootDir(root);
    return {
      root,
      boot: bootIsSeparate(root, bootDir) ? ("kept with each snapshot (outside the root subvolume)" as const) : ("inside the root snapshot" as const),
      keptOut: planKeepOut(root, this.keepOut(root)),
    };
  }

  /**
   * A rollback only works when the next boot mounts the file system's default
   * subvolume: refuse when fstab or the boot entries name the root's subvolume.
   */
  rollbackBlocker(root: string): string | null {
    const fstab = join(root, "etc", "fstab");
    if (existsSync(fstab)) {
      for (const line of readFileSync(fstab, "utf8").split("\n")) {
        const f = line.trim().split(/\s+/);
        if (f[0]?.startsWith("#") || f[1] !== "/" || f[2] !== "btrfs") continue;
        if (/(^|,)(subvol|subvolid)=/.test(f[3] ?? "")) return `${fstab} mounts / with ${f[3]}`;
      }
    }
    const entries = join(this.bootDir(root), "loader", "entries");
    if (existsSync(entries))
      for (const e of readdirSync(entries)) {
        const m = /rootflags=\S*(subvol|subvolid)=\S*/.exec(readFileSync(join(entries, e), "utf8"));
        if (m) return `the boot entry ${join(entries, e)} has ${m[0]}`;
      }
    return null;
  }

  /** The system root updates act on by default. */
  get root(): string {
    return this.settings.root;
  }

  private rootOf(root?: string): string {
    return root ?? this.settings.root;
  }

  private bootDir(root: string): string {
    return join(root, this.settings.bootDir);
  }

  private dbPath(root: string): string {
    return join(root, this.settings.pacmanDbPath);
  }

  lockFile(root: string): string {
    return join(this.dbPath(root), "db.lck");
  }

  packageArgv(root: string, command?: string): string[] {
    if (command !== undefined) return ["sh", "-c", command];
    if (this.settings.command) return this.settings.command;
    const argv = [this.config.bin.pacman, "-Syu", "--noconfirm"];
    if (root !== "/")
      argv.push("--root", root, "--dbpath", this.dbPath(root), "--config", join(root, "etc", "pacman.conf"), "--cachedir", join(root, "var", "cache", "pacman", "pkg"), "--hookdir", join(root, "etc", "pacman.d", "hooks"));
    return argv;
  }

  private checkContext(root: string, before: string | null, extra: string[] = []) {
    return {
      root,
      bootDir: this.bootDir(root),
      before,
      builtins: this.settings.builtinChecks,
      criticalBinaries: this.settings.criticalBinaries,
      requiredUnits: this.settings.requiredUnits,
      outOfTreeModules: this.settings.outOfTreeModules,
      commands: [...this.settings.checks, ...extra.map((command, i) => ({ name: extra.length === 1 ? "check command" : `check command ${i + 1}`, command, required: true, timeoutMs: 120_000 }))],
      bin: { systemctl: this.config.bin.systemctl, virsh: this.config.bin.virsh },
      libvirtUri: this.config.libvirtUri,
      socketPath: this.config.socketPath,
      sysRoot: this.config.root,
    };
  }

  /** Health checks of a root, now. */
  async check(rootArg?: string, extra: string[] = []): Promise<CheckResult[]> {
    return runChecks(this.checkContext(this.rootOf(rootArg), null, extra));
  }

  async run(opts: RunOptions = {}): Promise<UpdateView> {
    const root = this.rootOf(opts.root);
    const emit = (e: UpdateEvent) => opts.onEvent?.(e);
    await this.recoverInterrupted(root);
    const busy = this.repo.running().find((r) => processAlive(r.pid, r.pidStart));
    if (busy) throw new AppError("UPDATE_RUNNING", `update ${busy.id} is running (pid ${busy.pid}); wait for it to finish`, { status: 409 });
    const backend = await this.snapshots.backend(root);
    const blocker = this.rollbackBlocker(root);
    if (blocker)
      throw new AppError(
        "ROLLBACK_UNAVAILABLE",
        `${blocker}, so a rollback could not change what boots. Mount the root by the default subvolume instead (drop subvol=/subvolid= for /, and rootflags=subvol= from the boot entries; \`btrfs subvolume set-default\` on the root), as snapper's rollback needs too`,
        { status: 409 },
      );
    const next = await backend.defaultTree();
    const pending = this.repo.list(1000).find((r) => r.status === "rolled_back" && r.root === root && r.nextBoot === next);
    if (pending && next !== root)
      throw new AppError("ROLLBACK_PENDING", `update ${pending.id} was rolled back and the next boot mounts ${next}; reboot before updating again`, { status: 409 });
    preflight({ root, lockFile: this.lockFile(root), pacmanBin: this.config.bin.pacman, minFreeMb: this.settings.minFreeMb });
    const argv = this.packageArgv(root, opts.command);
    const before = installedPackages(this.dbPath(root));
    const startedAt = new Date();
    let row = this.repo.insert({ startedAt, status: "running", pid: process.pid, pidStart: processStart(process.pid), root, command: opts.command ?? argv.join(" ") });
    opts.onStarted?.(row.id);
    emit({ type: "phase", phase: "pre", message: `taking the pre snapshot of ${root} (${backend.name})` });
    let pre: SnapshotRow;
    try {
      pre = await this.snapshots.create(root, { kind: "pre", description: `before update ${row.id}`, updateId: row.id });
    } catch (err) {
      this.repo.update(row.id, { status: "failed", finishedAt: new Date(), pid: null, reason: `The pre snapshot could not be taken (${(err as Error).message}); nothing was updated.` });
      throw err;
    }
    row = this.repo.update(row.id, { snapshotBeforeId: pre.id });
    if (pre.path && existsSync(join(pre.path, this.settings.pacmanDbPath, "db.lck"))) {
      await this.snapshots.delete(pre.id).catch(() => undefined);
      this.repo.update(row.id, { status: "failed", finishedAt: new Date(), pid: null, reason: "A pacman started while the pre snapshot was taken (its lock is in it); the snapshot was deleted and nothing was updated." });
      throw new AppError("PACMAN_RUNNING", "a pacman started while the pre snapshot was taken; nothing was updated", { status: 409 });
    }

    emit({ type: "phase", phase: "packages", message: argv.join(" ") });
    const { code, log } = await this.runPackageCommand(argv, root, emit);
    const changes = packageChanges(before, installedPackages(this.dbPath(root)));
    row = this.repo.update(row.id, { packages: JSON.stringify(changes), log });

    emit({ type: "phase", phase: "post", message: "taking the post snapshot" });
    // the verdict does not hang on the post snapshot: without it the checks and a rollback still run
    let postNote = "";
    try {
      const post = await this.snapshots.create(root, { kind: "post", description: `after update ${row.id}`, updateId: row.id, pre });
      row = this.repo.update(row.id, { snapshotAfterId: post.id });
    } catch (err) {
      postNote = ` The post snapshot could not be taken (${(err as Error).message}).`;
      this.log.error("post snapshot failed", { update: row.id, error: (err as Error).message });
    }

    emit({ type: "phase", phase: "checks", message: "verifying the updated system" });
    const checks = await runChecks(this.checkContext(root, pre.path, opts.checks));
    for (const c of checks) emit({ type: "check", ...c });
    row = this.repo.update(row.id, { checks: JSON.stringify(checks) });
    const failed = failedRequired(checks);
    const partial = code !== 0 && changes.length > 0;
    if (failed.length || partial) {
      const cause = failed.length ? { failed } : { pacmanFailed: `the package command exited with ${code ?? "a timeout"}` };
      row = await this.rollbackRow(row, pre, changes.length, cause, opts.reboot, emit);
    } else if (code !== 0) {
      row = this.repo.update(row.id, { status: "failed", finishedAt: new Date(), pid: null, reason: `The package command exited with ${code ?? "a timeout"} and changed no package; the system passed its checks, nothing was rolled back.` });
    } else {
      const counter = changes.length ? armBootCounting(this.bootDir(root), this.settings.bootTries) : null;
      row = this.repo.update(row.id, {
        status: "succeeded",
        finishedAt: new Date(),
        pid: null,
        bootState: changes.length ? "pending" : "none",
        reason: changes.length
          ? `Updated ${changes.length} package${changes.length === 1 ? "" : "s"}; all required checks passed${counter ? `; the next boot is verified again (${counter.loader}, ${counter.left} tries)` : "; the next boot is verified again"}.`
          : "Nothing to update; the system passed its checks.",
      });
      await this.prune(root).catch((err: unknown) => this.log.warn("retention failed", { error: (err as Error).message }));
    }
    if (postNote) row = this.repo.update(row.id, { reason: (row.reason ?? "") + postNote });
    const view = this.view(row);
    emit({ type: "done", update: view });
    return view;
  }

  /** Runs the package command, streaming its lines (snap-pac, if installed, is told to skip: the pair is ours). */
  private async runPackageCommand(argv: string[], root: string, emit: (e: UpdateEvent) => void): Promise<{ code: number | null; log: string }> {
    let log = "";
    const progress = new PacmanProgress();
    let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
    try {
      proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NEURON_ROOT: root, SNAP_PAC_SKIP: "y" } });
    } catch (err) {
      return { code: 127, log: `cannot start ${argv[0]}: ${(err as Error).message}\n` };
    }
    const timer = setTimeout(() => proc.kill("SIGKILL"), this.settings.commandTimeoutMs);
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      let buf = "";
      const line = (l: string) => {
        log += l + "\n";
        if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
        emit({ type: "output", line: l });
        const p = progress.feed(l);
        if (p) emit({ type: "progress", ...p });
      };
      for await (const chunk of stream) {
        buf += decoder.decode(chunk, { stream: true });
        const parts = buf.split(/\r?\n|\r/);
        buf = parts.pop()!;
        for (const l of parts) if (l.length) line(l);
      }
      if (buf.length) line(buf);
    };
    try {
      await Promise.all([pump(proc.stdout), pump(proc.stderr)]);
      return { code: await proc.exited, log };
    } finally {
      clearTimeout(timer);
    }
  }

  private async rollbackRow(
    row: UpdateRow,
    target: SnapshotRow,
    packages: number,
    cause: Parameters<typeof rollbackReason>[0]["cause"],
    reboot: boolean | undefined,
    emit: (e: UpdateEvent) => void = () => undefined,
  ): Promise<UpdateRow> {
    emit({ type: "phase", phase: "rollback", message: `rolling back to snapshot ${target.id}` });
    const backend = await this.snapshots.backend(target.root);
    const outcome = await rollbackTo({ backend, target, root: target.root, bootDir: this.bootDir(target.root), keepOut: this.keepOut(target.root), description: `rollback to snapshot ${target.id} (update ${row.id})` });
    const copy = this.snapshots.recordRollback(target.root, backend, outcome.nextBootRef, outcome.nextBoot, `rollback to snapshot ${target.id}`, row.id, target);
    const reason = rollbackReason({ packages, startedAt: row.startedAt, cause, snapshotId: target.id, kept: outcome.kept, orphanKernels: outcome.orphanKernels });
    const rebooting = (reboot ?? true) && this.settings.rebootCommand !== null;
    const updated = this.repo.update(row.id, {
      status: "rolled_back",
      finishedAt: new Date(),
      pid: null,
      reason: reason + (rebooting ? " A reboot was scheduled." : " Reboot to finish the rollback."),
      nextBoot: outcome.nextBoot,
      rollbackSnapshotId: copy.id,
      bootState: "none",
    });
    this.log.warn("update rolled back", { update: row.id, snapshot: target.id, nextBoot: outcome.nextBoot, reason });
    // the database has its last word about this update before the state is copied into the next root
    this.flushState();
    carryOver(target.root, outcome.nextBoot, outcome.kept);
    if (rebooting) {
      const r = await execFile(this.settings.rebootCommand!, { timeoutMs: 30_000 });
      if (r.code !== 0) {
        this.log.error("reboot could not be scheduled", { error: r.spawnError ?? r.stderr.trim() });
        return this.repo.update(row.id, { reason: `${reason} The reboot could not be scheduled (${r.spawnError ?? (r.stderr.trim() || `exit ${r.code}`)}); reboot to finish the rollback.` });
      }
    }
    return updated;
  }

  /** `update rollback [ID]`: to the pre snapshot of update ID (default: the newest update that has one). */
  async rollback(id?: number, opts: { reboot?: boolean } = {}): Promise<UpdateView> {
    const row = id === undefined ? this.repo.list(1000).find((r) => r.snapshotBeforeId !== null && r.status !== "running") : this.repo.get(id);
    if (!row) throw new AppError("NOT_FOUND", id === undefined ? "no update with a pre snapshot to roll back to" : `no update ${id}`, { status: 404 });
    if (row.status === "running" && processAlive(row.pid, row.pidStart)) throw new AppError("UPDATE_RUNNING", `update ${row.id} is still running`, { status: 409 });
    if (row.snapshotBeforeId === null) throw new AppError("NO_SNAPSHOT", `update ${row.id} has no pre snapshot to roll back to`, { status: 409 });
    const pre = this.snapshots.get(row.snapshotBeforeId);
    const packages = (JSON.parse(row.packages) as PackageChange[]).length;
    return this.view(await this.rollbackRow(row, pre, packages, { manual: true }, opts.reboot));
  }

  /**
   * Updates still "running" whose process is gone were interrupted (crash, kill,
   * power loss): verified and, by policy, rolled back to their pre snapshot.
   */
  async recoverInterrupted(root?: string): Promise<UpdateView[]> {
    const out: UpdateView[] = [];
    for (const row of this.repo.running()) {
      if (processAlive(row.pid, row.pidStart)) continue;
      if (root !== undefined && row.root !== root) continue;
      this.log.warn("found an interrupted update", { update: row.id, pid: row.pid });
      if (row.snapshotBeforeId === null) {
        out.push(this.view(this.repo.update(row.id, { status: "failed", finishedAt: new Date(), pid: null, reason: `The update on ${row.startedAt.toISOString().slice(0, 10)} was interrupted before its pre snapshot; pacman had not started, nothing was changed.` })));
        continue;
      }
      const pre = this.snapshots.get(row.snapshotBeforeId);
      const changes = packageChanges(installedPackages(join(pre.path ?? "", this.settings.pacmanDbPath)), installedPackages(this.dbPath(row.root)));
      const checks = await runChecks(this.checkContext(row.root, pre.path));
      this.repo.update(row.id, { checks: JSON.stringify(checks), packages: JSON.stringify(changes) });
      const failed = failedRequired(checks);
      const lock = existsSync(this.lockFile(row.root)) ? ` pacman's lock ${this.lockFile(row.root)} was left behind (not removed).` : "";
      const policy = this.settings.onInterrupted;
      if (policy === "always" || (policy === "on-failure" && failed.length)) {
        const cause = failed.length && policy === "on-failure" ? { failed } : { interrupted: true as const };
        const r = await this.rollbackRow(this.repo.get(row.id)!, pre, changes.length, cause, false);
        out.push(this.view(lock ? this.repo.update(row.id, { reason: r.reason + lock }) : r));
      } else {
        const reason = `The update on ${row.startedAt.toISOString().slice(0, 10)} was interrupted; ${failed.length ? `required checks fail (${failed.map((f) => f.name).join(", ")})` : "the system passed its checks"}; policy "${policy}" left it as it is.${lock}`;
        out.push(this.view(this.repo.update(row.id, { status: "failed", finishedAt: new Date(), pid: null, reason })));
      }
    }
    return out;
  }

  /**
   * At boot (the oneshot unit): the update that waits for verification is
   * checked; a pass blesses the boot, a failure counts a boot, and when the
   * tries are used up the update is rolled back.
   */
  async verifyBoot(opts: { reboot?: boolean } = {}): Promise<{ update: UpdateView | null; checks: CheckResult[]; healthy: boolean }> {
    const row = this.repo.pendingBoot();
    const root = row?.root ?? this.settings.root;
    const pre = row?.snapshotBeforeId ? this.snapshots.get(row.snapshotBeforeId) : null;
    const checks = await runChecks(this.checkContext(root, pre?.path ?? null));
    const failed = failedRequired(checks);
    if (!row) return { update: null, checks, healthy: failed.length === 0 };
    if (failed.length === 0) {
      blessBoot(this.bootDir(root));
      return { update: this.view(this.repo.update(row.id, { bootState: "verified", checks: JSON.stringify(checks) })), checks, healthy: true };
    }
    const boots = row.bootFailures + 1;
    const counter = readBootCounter(this.bootDir(root));
    let updated = this.repo.update(row.id, { bootFailures: boots, checks: JSON.stringify(checks) });
    const triesLeft = counter ? counter.left : this.settings.bootTries - boots;
    if (triesLeft > 0 && boots < this.settings.bootTries) {
      if ((opts.reboot ?? true) && this.settings.rebootCommand) await execFile(this.settings.rebootCommand, { timeoutMs: 30_000 });
      return { update: this.view(updated), checks, healthy: false };
    }
    if (!pre) {
      updated = this.repo.update(row.id, { bootState: "failed", reason: `The update broke ${failed.map((f) => f.name).join(", ")} (failed on ${boots} boots) and has no pre snapshot to roll back to.` });
      return { update: this.view(updated), checks, healthy: false };
    }
    const packages = (JSON.parse(row.packages) as PackageChange[]).length;
    updated = await this.rollbackRow(updated, pre, packages, { failed, boots }, opts.reboot);
    this.repo.update(row.id, { bootState: "failed" });
    return { update: this.view(this.repo.get(row.id)!), checks, healthy: false };
  }

  /** Retention: the last N pre/post pairs, and the free-space floor. */
  async prune(root?: string): Promise<number[]> {
    const r = this.rootOf(root);
    return pruneSnapshots({ snapshots: this.snapshots, root: r, keepPairs: this.settings.keepPairs, minFreeMb: this.settings.minFreeMb, protect: this.repo.list(1000).flatMap((u) => (u.rollbackSnapshotId ? [u.rollbackSnapshotId] : [])), log: this.log });
  }

  history(limit = 100): UpdateView[] {
    return this.repo.list(limit).map((r) => this.view(r));
  }

  show(id: number): UpdateView {
    const row = this.repo.get(id);
    if (!row) throw new AppError("NOT_FOUND", `no update ${id}`, { status: 404 });
    return { ...this.view(row), log: row.log };
  }

  view(row: UpdateRow): UpdateView {
    const snap = (id: number | null) => {
      if (id === null) return null;
      try {
        return this.snapshots.view(this.snapshots.get(id));
      } catch {
        return null;
      }
    };
    const verdict = row.status === "succeeded" ? "ok" : row.status === "rolled_back" ? "rolled-back" : row.status === "failed" ? "failed" : null;
    return {
      id: row.id,
      status: row.status,
      verdict,
      startedAt: row.startedAt.toISOString(),
      finishedAt: row.finishedAt?.toISOString() ?? null,
      root: row.root,
      command: row.command,
      packages: JSON.parse(row.packages) as PackageChange[],
      pre: snap(row.snapshotBeforeId),
      post: snap(row.snapshotAfterId),
      nextBoot: row.nextBoot,
      checks: JSON.parse(row.checks) as CheckResult[],
      reason: row.reason,
      coverage: (() => {
        try {
          return this.coverage(row.root);
        } catch {
          return null;
        }
      })(),
      bootState: row.bootState,
      bootFailures: row.bootFailures,
    };
  }
}
