/**
 * Data migration: plan (what moves, where, how faithfully), run (journaled, verified, resumable),
 * report, undo. No transport here: the CLI and the API call these methods.
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { NativeCopier } from "../../ffi/migrate.ts";
import type { EntryRow, MigrationRow, MigrationsRepo } from "../db/repos/migrations.ts";
import { AppError, notFound } from "../errors.ts";
import type { EventBus } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import type { ConflictPolicy, LivePlanRequest, MigrationStatus, MigrationSummary, Plan, PlanItem, PlanRequest, Profile, Progress, Report, RunRequest, SourceInfo, UndoResult } from "./model.ts";
import { expandPlan, findConflicts, type Expanded } from "./plan.ts";
import { listProfiles } from "./profiles.ts";
import { pullFromVm, type GuestAgents } from "./live.ts";
import { expandedFromJournal, scanRecord, scanStillValid, type ScanRecord } from "./journal.ts";
import { notable, readNtfsMeta, attributeNames, type MetaOutcome } from "./ntfs-meta.ts";
import { journalRows, runJournal, type RunOutcome } from "./run.ts";
import type { MigrationSettings } from "./settings.ts";
import { openSource, type OpenedSource } from "./source.ts";
import { undoJournal } from "./undo.ts";
import { reportWords } from "./words.ts";

export interface MigrationDeps {
  repo: MigrationsRepo;
  settings: MigrationSettings;
  stateDir: string;
  etcDir: string;
  /** The native library's path (the copy engine), resolved when a run starts. */
  nativePath: () => string;
  events?: EventBus;
  log?: Logger;
  /** The guest agents of running VMs (the live path, planFromVm). */
  guest?: GuestAgents;
}

type StoredPlan = Omit<Plan, "id" | "status" | "createdAt">;
interface StoredOptions {
  user?: string;
  target?: string;
  policy: ConflictPolicy;
  acceptUnsafeSource?: boolean;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export class MigrationService {
  private copier: NativeCopier | null = null;
  private readonly active = new Map<number, AbortController>();

  constructor(private readonly deps: MigrationDeps) {}

  private get mountDir() {
    return this.deps.settings.mountDir ?? join(this.deps.stateDir, "migration-mounts");
  }

  private native(): NativeCopier {
    return (this.copier ??= new NativeCopier(this.deps.nativePath()));
  }

  /** Mounted volumes kept a while after use (settings.holdSourceMs), by source and key. */
  private readonly held = new Map<string, { src: OpenedSource; users: number; timer: ReturnType<typeof setTimeout> | null }>();

  private async open(source: string, recoveryKey?: string): Promise<OpenedSource> {
    const key = `${resolve(source)}\0${recoveryKey ?? ""}`;
    let h = this.held.get(key);
    if (!h) {
      const src = await openSource(source, { settings: this.deps.settings, mountDir: this.mountDir, recoveryKey });
      // a folder costs nothing to open again; a mount is kept for the next plan or run
      if (src.info.kind !== "ntfs" || this.deps.settings.holdSourceMs === 0) return src;
      h = { src, users: 0, timer: null };
      this.held.set(key, h);
    }
    const entry = h;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.users++;
    let closed = false;
    return {
      ...entry.src,
      close: async () => {
        if (closed) return;
        closed = true;
        if (--entry.users > 0) return;
        entry.timer = setTimeout(() => void this.release(key), this.deps.settings.holdSourceMs);
        entry.timer.unref?.();
      },
      closeSync: () => {
        if (closed) return;
        closed = true;
        entry.users--;
      },
    };
  }

  private async release(key: string): Promise<void> {
    const h = this.held.get(key);
    if (!h || h.users > 0) return;
    this.held.delete(key);
    if (h.timer) clearTimeout(h.timer);
    await h.src.close();
  }

  private profiles(src: OpenedSource, user?: string, target?: string): Profile[] {
    const all = listProfiles(src.root, { etcDir: this.deps.etcDir, target: undefined });
    const eligible = all.filter((p) => !p.skipped);
    if (!all.length) throw new AppError("MIGRATION_NO_PROFILE", `no Windows profiles under ${src.info.input} (no Users folder): give the Windows partition or its root folder`, { status: 422 });
    let chosen: Profile[];
    if (user) {
      const p = all.find((x) => x.name.toLowerCase() === user.toLowerCase());
      if (!p) throw new AppError("MIGRATION_NO_PROFILE", `no Windows profile ${JSON.stringify(user)}; profiles: ${eligible.map((x) => x.name).join(", ") || "none"}`, { status: 422 });
      if (p.skipped) throw new AppError("MIGRATION_NO_PROFILE", `${p.skipped}, not migrated`, { status: 422 });
      chosen = [p];
    } else {
      if (target && eligible.length > 1) throw new AppError("MIGRATION_NO_PROFILE", `several profiles (${eligible.map((x) => x.name).join(", ")}): choose one with --user for --target`, { status: 422 });
      chosen = eligible;
    }
    if (target) chosen = chosen.map((p) => ({ ...p, target: resolve(target) }));
    for (const p of chosen) if (!existsSync(p.target)) throw new AppError("MIGRATION_TARGET_MISSING", `the target home ${p.target} does not exist (create the Linux user first, or give --target)`, { status: 422 });
    return [...chosen, ...all.filter((p) => p.skipped)];
  }

  async inspect(source: string, recoveryKey?: string): Promise<{ source: SourceInfo; profiles: Profile[] }> {
    const src = await this.open(source, recoveryKey);
    try {
      return { source: src.info, profiles: listProfiles(src.root, { etcDir: this.deps.etcDir }) };
    } finally {
      await src.close();
    }
  }

  private buildPlan(src: OpenedSource, profiles: Profile[], policy: ConflictPolicy): { plan: StoredPlan; exp: Expanded } {
    // attributes and streams from the volume's $MFT (one sequential read, not a request per file)
    const meta = src.device ? readNtfsMeta(src.device) : null;
    const exp = expandPlan(src.root, { profiles, meta });
    const conflicts = findConflicts(exp);
    for (const item of exp.items) {
      const c = conflicts.get(item.id) ?? [];
      item.conflicts = { count: c.length, sample: c.slice(0, 20).map((x) => ({ path: x.path, reason: x.reason })) };
    }
    const byFidelity = { exact: 0, translated: 0, reinstall: 0, cannot: 0 };
    const byCategory: Record<string, { files: number; bytes: number }> = {};
    let files = 0;
    let bytes = 0;
    let nconf = 0;
    for (const i of exp.items) {
      byFidelity[i.fidelity]++;
      nconf += i.conflicts.count;
      if (i.fidelity === "cannot") continue;
      files += i.files;
      bytes += i.bytes;
      const c = (byCategory[i.category] ??= { files: 0, bytes: 0 });
      c.files += i.files;
      c.bytes += i.bytes;
    }
    const s = this.deps.settings;
    const estimateSeconds = Math.round((bytes / (s.estimateMBps * 1e6) + (files * s.estimatePerFileMs) / 1000) * 10) / 10;
    const warnings = [...src.info.warnings];
    if (exp.notFollowed.length) warnings.push(`${exp.notFollowed.length} link(s) (junctions, symlinks) are not followed`);
    if (exp.unreadable.length) warnings.push(`${exp.unreadable.length} folder(s) or file(s) could not be read`);
    if (src.device && !meta) warnings.push("the volume's $MFT could not be read: Windows attributes (hidden, system) and alternate data streams are not carried");
    const noted = exp.entries.filter((e) => notable(e.meta));
    if (noted.length) {
      const streams = noted.reduce((a, e) => a + e.meta!.streams.length, 0);
      const attributed = noted.filter((e) => e.meta!.attrib).length;
      warnings.push(`${attributed} file(s) or folder(s) have Windows attributes (read-only, hidden, system) and ${streams} alternate data stream(s) are attached: kept as user.ntfs.* extended attributes where the target allows (Linux shows hidden files), listed in the report`);
    }
    return {
      exp,
      plan: { source: src.info, profiles, policy, items: exp.items, totals: { items: exp.items.length, files, bytes, conflicts: nconf, byFidelity, byCategory }, estimateSeconds, warnings },
    };
  }

  async plan(req: PlanRequest): Promise<Plan> {
    const policy = req.policy ?? this.deps.settings.policy;
    const src = await this.open(req.source, req.recoveryKey);
    try {
      const profiles = this.profiles(src, req.user, req.target);
      const { plan, exp } = this.buildPlan(src, profiles, policy);
      const options: StoredOptions = { user: req.user, target: req.target, policy, acceptUnsafeSource: req.acceptUnsafeSource };
      const row = this.deps.repo.insert({ status: "planned", source: src.info.input, plan: JSON.stringify(plan), options: JSON.stringify(options), scan: JSON.stringify(scanRecord(exp)) });
      // the journal is written now: the run reuses this scan while the source is unchanged
      this.deps.repo.insertEntries(journalRows(row.id, exp));
      this.deps.events?.publish("migration.state", { id: row.id, status: "planned" });
      return this.view(row);
    } finally {
      await src.close();
    }
  }

  /**
   * The live path: the VM's profile(s) pulled through its guest agent into the state dir (only
   * what changed since the last pull travels), then planned like a folder source.
   */
  async planFromVm(req: LivePlanRequest): Promise<Plan> {
    if (!this.deps.guest) throw new AppError("NOT_SUPPORTED", "this appliance has no guest agent service", { status: 501 });
    const { dir, mirror } = await pullFromVm(this.deps.guest, this.deps.stateDir, req.fromVm, { user: req.user });
    this.deps.log?.info("pulled a VM's profile for migration", { vm: req.fromVm, files: mirror.files, fetchedBytes: mirror.fetchedBytes, unchanged: mirror.skipped });
    return this.plan({ source: dir, user: req.user, target: req.target, policy: req.policy });
  }

  private row(id: number): MigrationRow {
    const row = this.deps.repo.get(id);
    if (!row) throw notFound("migration", id);
    return row;
  }

  view(rowOrId: MigrationRow | number): Plan {
    const row = typeof rowOrId === "number" ? this.row(rowOrId) : rowOrId;
    const p = JSON.parse(row.plan) as StoredPlan;
    return { ...p, id: row.id, status: row.status, createdAt: row.createdAt.toISOString() };
  }

  list(): MigrationSummary[] {
    return this.deps.repo.list().map((row) => {
      const p = JSON.parse(row.plan) as StoredPlan;
      return { id: row.id, status: row.status, source: row.source, profiles: p.profiles.filter((x) => !x.skipped).map((x) => x.name), createdAt: row.createdAt.toISOString(), startedAt: iso(row.startedAt), finishedAt: iso(row.finishedAt), files: p.totals.files, bytes: p.totals.bytes };
    });
  }

  isRunning(id: number): boolean {
    return this.active.has(id);
  }

  /** Marks runs a crash left "running" as interrupted (they resume on the next run). */
  recover(): number[] {
    const ids: number[] = [];
    for (const r of this.deps.repo.running()) {
      if (this.active.has(r.id)) continue;
      this.deps.repo.update(r.id, { status: "interrupted" });
      ids.push(r.id);
    }
    return ids;
  }

  private setStatus(id: number, status: MigrationStatus, extra: Partial<MigrationRow> = {}) {
    this.deps.repo.update(id, { status, ...extra });
    this.deps.events?.publish("migration.state", { id, status });
  }

  /**
   * What the run works from: the plan's own scan and journal while the source is as the plan saw
   * it (or once a run has started: its journal is the truth), else a fresh scan and journal.
   */
  private expansion(row: MigrationRow, src: OpenedSource, stored: StoredPlan, policy: ConflictPolicy): Expanded {
    const repo = this.deps.repo;
    const rec = row.scan ? (JSON.parse(row.scan) as ScanRecord) : null;
    const journaled = repo.entryCount(row.id) > 0;
    const started = row.status !== "planned";
    if (rec && journaled && (started || scanStillValid(src.root, rec))) return expandedFromJournal(repo.entries(row.id), stored.items, stored.profiles, rec);
    const { exp } = this.buildPlan(src, stored.profiles, policy);
    if (!started) {
      // the source changed since the plan: a new journal from the new scan (runJournal writes it)
      repo.clearEntries(row.id);
      repo.update(row.id, { scan: JSON.stringify(scanRecord(exp)) });
    }
    return exp;
  }

  /** Runs (or resumes) migration `id`; progress goes to onProgress and the bus. */
  async run(id: number, opts: RunRequest = {}, onProgress?: (p: Progress) => void): Promise<Report> {
    this.recover();
    const row = this.row(id);
    if (this.active.has(id) || row.status === "running") throw new AppError("MIGRATION_RUNNING", `migration ${id} is running`, { status: 409 });
    if (row.status === "undone") throw new AppError("CONFLICT", `migration ${id} was undone; plan again`, { status: 409 });
    if (row.status === "done") return this.report(id);
    const stored = JSON.parse(row.options) as StoredOptions;
    const policy = opts.policy ?? stored.policy;
    const emit = (p: Progress) => {
      onProgress?.(p);
      this.deps.events?.publish("migration.progress", p);
    };
    const copier = this.native();
    emit({ id, phase: "mounting", filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0, current: null, etaSeconds: null, bytesPerSecond: null });
    const src = await this.open(row.source, opts.recoveryKey);
    const ctl = new AbortController();
    this.active.set(id, ctl);
    try {
      if ((src.info.hibernated || src.info.dirty) && !(opts.acceptUnsafeSource ?? stored.acceptUnsafeSource)) {
        throw new AppError("MIGRATION_SOURCE_UNSAFE", `${src.info.warnings.join(" ")} To copy what the disk holds anyway (read-only), run again with --accept-unsafe-source.`, { status: 409 });
      }
      emit({ id, phase: "scanning", filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0, current: null, etaSeconds: null, bytesPerSecond: null });
      const planned = JSON.parse(row.plan) as StoredPlan;
      const profiles = planned.profiles;
      const exp = this.expansion(row, src, planned, policy);
      this.setStatus(id, "running", { startedAt: row.startedAt ?? new Date() });
      const owners = new Map<string, { uid: number; gid: number } | null>();
      const homes = profiles.filter((p) => !p.skipped).map((p) => p.target);
      const ownerOf = (t: string) => {
        const home = homes.find((h) => t === h || t.startsWith(h + "/"));
        if (!home) return null;
        if (!owners.has(home)) {
          const st = statSync(home);
          owners.set(home, { uid: st.uid, gid: st.gid });
        }
        return owners.get(home)!;
      };
      let outcome: RunOutcome;
      try {
        outcome = await runJournal({ repo: this.deps.repo, copier, root: src.root, id, policy, ownerOf, onProgress: emit, signal: ctl.signal, threads: this.deps.settings.copyThreads, directSource: src.info.mountedBy === "ntfs-3g", streamsReadable: src.info.mountedBy === "ntfs-3g", dataRegions: src.device ? sparseRegions : undefined }, exp);
      } catch (err) {
        this.setStatus(id, "interrupted");
        throw err;
      }
      const status: MigrationStatus = outcome.interrupted ? "interrupted" : "done";
      const report = this.buildReport(id, status, exp, outcome, row.startedAt ?? new Date());
      this.setStatus(id, status, { finishedAt: status === "done" ? new Date() : null, report: JSON.stringify(report) });
      emit({ id, phase: status === "done" ? "done" : "failed", filesDone: report.copied.files, filesTotal: exp.entries.filter((e) => e.kind === "file").length, bytesDone: report.copied.bytes, bytesTotal: report.copied.bytes, current: null, etaSeconds: 0, bytesPerSecond: null });
      return report;
    } catch (err) {
      if (this.deps.repo.get(id)?.status === "running") this.setStatus(id, "interrupted");
      throw err;
    } finally {
      this.active.delete(id);
      await src.close();
    }
  }

  /**
   * Starts (or resumes) a run in the background: resolves once the source is mounted and passed
   * its checks (the run goes on, reporting through the bus), rejects with the reason it could not.
   */
  start(id: number, opts: RunRequest = {}): Promise<void> {
    return new Promise<void>((resolveStart, rejectStart) => {
      let started = false;
      this.run(id, opts, (p) => {
        if (!started && (p.phase === "scanning" || p.phase === "copying")) {
          started = true;
          resolveStart();
        }
      }).then(
        () => {
          if (!started) resolveStart();
        },
        (err) => {
          if (!started) rejectStart(err);
          else {
            this.deps.log?.warn("migration run failed", { id, error: err });
            this.deps.events?.publish("migration.state", { id, status: "failed", error: (err as Error).message });
          }
        },
      );
    });
  }

  /** Plans and runs in one go (the CLI's `migrate run SRC`). */
  async planAndRun(req: PlanRequest, onProgress?: (p: Progress) => void): Promise<Report> {
    const plan = await this.plan(req);
    return this.run(plan.id, { acceptUnsafeSource: req.acceptUnsafeSource, recoveryKey: req.recoveryKey }, onProgress);
  }

  /** Stops every run of this process between files; they stay resumable. */
  stopAll(): void {
    for (const c of this.active.values()) c.abort();
  }

  /** Stops a run between files; it stays resumable. */
  stop(id: number): boolean {
    const c = this.active.get(id);
    c?.abort();
    return Boolean(c);
  }

  private buildReport(id: number, status: MigrationStatus, exp: Expanded, o: RunOutcome, startedAt: Date): Report {
    const items = exp.items;
    const all = this.deps.repo.entries(id);
    const files = all.filter((r) => r.kind === "file" || r.kind === "generated");
    const doneRows = files.filter((r) => r.state === "done");
    const skipped: Record<string, number> = {};
    for (const r of files.filter((x) => x.state === "skipped")) skipped[r.note ?? "skipped"] = (skipped[r.note ?? "skipped"] ?? 0) + 1;
    const renamedWin = exp.entries.filter((e) => e.renamed).map((e) => ({ from: e.source, to: e.target, reason: e.renamed! }));
    const failedRows = files.filter((r) => r.state === "failed");
    const report: Report = {
      id,
      status,
      startedAt: startedAt.toISOString(),
      finishedAt: status === "done" ? new Date().toISOString() : null,
      copied: { files: doneRows.length, bytes: doneRows.reduce((a, r) => a + r.size, 0) },
      verified: doneRows.length,
      skipped: { files: files.filter((r) => r.state === "skipped").length, reasons: skipped },
      renamed: [...renamedWin, ...o.renamed].slice(0, 500),
      failed: failedRows.filter((r) => !(r.note ?? "").startsWith("unreadable")).map((r) => ({ path: r.sourcePath, error: r.note ?? "failed" })).slice(0, 500),
      unreadable: [...exp.unreadable, ...failedRows.filter((r) => (r.note ?? "").startsWith("unreadable")).map((r) => ({ path: r.sourcePath, error: r.note! }))].slice(0, 500),
      notFollowed: exp.notFollowed.slice(0, 500),
      cannotMove: items.filter((i) => i.fidelity === "cannot").map((i) => ({ item: i.id, label: i.label, why: i.why ?? "", livePath: i.livePath })),
      reinstall: items.filter((i) => i.reinstall).map((i) => ({ item: i.id, kind: i.reinstall!.kind, ids: i.reinstall!.ids })),
      windowsMetadata: windowsMetadata(all),
      words: "",
    };
    report.words = reportWords(report, items as PlanItem[]);
    return report;
  }

  report(id: number): Report {
    const row = this.row(id);
    if (!row.report) throw new AppError("NOT_FOUND", `migration ${id} has not run yet`, { status: 404 });
    return { ...(JSON.parse(row.report) as Report), status: row.status };
  }

  undo(id: number): UndoResult {
    const row = this.row(id);
    if (this.active.has(id) || row.status === "running") throw new AppError("MIGRATION_RUNNING", `migration ${id} is running: stop it first`, { status: 409 });
    if (row.status === "planned") throw new AppError("CONFLICT", `migration ${id} has not run: nothing to undo`, { status: 409 });
    const r = undoJournal(this.deps.repo, this.native(), id);
    const status: MigrationStatus = "undone";
    this.setStatus(id, status);
    return { id, removed: r.removed, restored: r.restored, refused: r.refused, status };
  }

  /** Unmounts the volumes kept after use. */
  async releaseSources(): Promise<void> {
    for (const key of [...this.held.keys()]) await this.release(key);
  }

  close(): void {
    for (const c of this.active.values()) c.abort();
    for (const [key, h] of this.held) {
      if (h.timer) clearTimeout(h.timer);
      this.held.delete(key);
      h.src.closeSync();
    }
    this.copier?.close();
    this.copier = null;
  }
}

/** The attributes and streams the run carried (or could not), from the journal's outcomes. */
function windowsMetadata(rows: EntryRow[]): NonNullable<Report["windowsMetadata"]> {
  const items: NonNullable<Report["windowsMetadata"]>["items"] = [];
  let lost = 0;
  for (const r of rows) {
    if (!r.meta || r.state !== "done" && r.kind !== "dir") continue;
    const m = JSON.parse(r.meta) as Partial<MetaOutcome>;
    if (!("streamsKept" in m)) continue; // not reached by a run
    const streams = m.streamsKept ?? [];
    lost += streams.filter((s) => !s.kept).length + (m.attribKept === false ? 1 : 0);
    items.push({ path: r.sourcePath, target: r.targetPath, attributes: attributeNames(m.attrib ?? 0), attributesKept: m.attribKept ?? null, why: m.attribWhy ?? null, streams });
  }
  return { files: items.length, lost, items: items.slice(0, 500) };
}

/** NTFS through ntfs-3g reports no holes: a file with no allocated blocks is one hole. */
function sparseRegions(_abs: string, size: number, blocks: number): [number, number][] | null {
  if (size > 4096 && blocks === 0) return [];
  return null;
}
