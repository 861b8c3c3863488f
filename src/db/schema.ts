/**
 * The appliance's state, one SQLite database through Drizzle.
 * Migrations are generated from this file by drizzle-kit into migrations/
 * (`npm run db:generate`) and embedded into the binary.
 *
 * Times are integer milliseconds since the epoch (mode "timestamp_ms").
 */
import { sql } from "drizzle-orm";
import { type AnySQLiteColumn, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

const createdAt = () =>
  integer("created_at", { mode: "timestamp_ms" })
    .notNull()
    .default(sql`(cast(unixepoch('subsec') * 1000 as integer))`);

/** Moonlight clients paired with the GameStream host, identified by their certificate. */
export const pairings = sqliteTable("pairings", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull(),
  /** Client certificate, PEM. */
  certPem: text("cert_pem").notNull(),
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: text("fingerprint").notNull().unique(),
  createdAt: createdAt(),
  lastSeenAt: integer("last_seen_at", { mode: "timestamp_ms" }),
  /**
   * What the client may do (src/gamestream/permissions.ts), a JSON array of names. The default
   * (every permission) is what rows that existed before this column keep; new pairings always
   * set it (every permission for the first client, `["view"]` for later ones).
   */
  permissions: text("permissions", { mode: "json" })
    .$type<string[]>()
    .notNull()
    .default(sql`'["view","keyboard","mouse","controller","launch","clipboard"]'`),
});

/** "host-desktop": the host's own session through a per-session virtual output (src/capture/host-output.ts). */
export const APP_KINDS = ["desktop", "vm", "command", "host-desktop"] as const;

/** The app catalog the stream host serves (/applist) and the GUI shows. */
export const apps = sqliteTable(
  "apps",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    name: text("name").notNull().unique(),
    kind: text("kind", { enum: APP_KINDS }).notNull(),
    /** For kind=command: the command line run (in the VM when vmName is set). */
    command: text("command"),
    /** For kind=vm (and commands run inside a VM): the libvirt domain name. */
    vmName: text("vm_name"),
    boxArtPath: text("box_art_path"),
    sortOrder: integer("sort_order").notNull().default(0),
    createdAt: createdAt(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("apps_sort_order_idx").on(t.sortOrder, t.id)],
);

export const SNAPSHOT_KINDS = ["pre", "post", "manual", "rollback"] as const;

/** Filesystem snapshots (snapper / btrfs) taken around updates or by hand. */
export const snapshots = sqliteTable("snapshots", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  backend: text("backend").notNull(),
  /** The backend's own reference (snapper number, subvolume path, ...). */
  backendRef: text("backend_ref"),
  label: text("label").notNull(),
  kind: text("kind", { enum: SNAPSHOT_KINDS }).notNull(),
  createdAt: createdAt(),
  parentUpdateId: integer("parent_update_id").references((): AnySQLiteColumn => updateHistory.id, {
    onDelete: "set null",
  }),
  /** The system root this snapshot is of (a mounted tree; "/" on a real system). */
  root: text("root").notNull().default("/"),
  /** Where the snapshot's tree is (a read-only subvolume; writable for kind rollback). */
  path: text("path"),
  /** JSON: the /boot files kept with it (outside the root subvolume): [{ path, sha256, size }]. */
  bootFiles: text("boot_files").notNull().default("[]"),
  /** Where those /boot files are kept. */
  bootStore: text("boot_store"),
  /** For kind post: the pre snapshot of the pair. */
  preId: integer("pre_id"),
  /** Set once the backend's snapshot is gone (retention or by hand); the row stays for the history. */
  deletedAt: integer("deleted_at", { mode: "timestamp_ms" }),
});

export const UPDATE_STATUSES = ["running", "succeeded", "failed", "rolled_back"] as const;
export const BOOT_STATES = ["none", "pending", "verified", "failed"] as const;

/** System updates run by the appliance, with the snapshots around them. */
export const updateHistory = sqliteTable("update_history", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  startedAt: integer("started_at", { mode: "timestamp_ms" }).notNull(),
  finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
  status: text("status", { enum: UPDATE_STATUSES }).notNull(),
  /** JSON array of { name, from, to }. */
  packages: text("packages").notNull().default("[]"),
  log: text("log").notNull().default(""),
  snapshotBeforeId: integer("snapshot_before_id").references((): AnySQLiteColumn => snapshots.id, {
    onDelete: "set null",
  }),
  snapshotAfterId: integer("snapshot_after_id").references((): AnySQLiteColumn => snapshots.id, {
    onDelete: "set null",
  }),
  /** The process running it and that process's start time (clock ticks): a running row without it was interrupted. */
  pid: integer("pid"),
  pidStart: integer("pid_start"),
  root: text("root").notNull().default("/"),
  /** The package command, as run. */
  command: text("command").notNull().default(""),
  /** JSON: the health check results of the last verification. */
  checks: text("checks").notNull().default("[]"),
  /** What happened, in words a person understands. */
  reason: text("reason"),
  /** After a rollback: the tree the next boot mounts as root. */
  nextBoot: text("next_boot"),
  rollbackSnapshotId: integer("rollback_snapshot_id"),
  /** Verification at the next boot (boot counting). */
  bootState: text("boot_state", { enum: BOOT_STATES }).notNull().default("none"),
  bootFailures: integer("boot_failures").notNull().default(0),
});

export const AUDIT_STATUSES = ["planned", "applied", "failed", "rolled_back"] as const;

/** Every change the appliance makes to the host system (VFIO config, libvirt definitions, migrated files). */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    createdAt: createdAt(),
    /** Who asked: "api", "cli", "system". */
    actor: text("actor").notNull(),
    /** Stable action name, e.g. "vfio.apply", "vm.define". */
    action: text("action").notNull(),
    /** What was changed (a path, a VM name, ...). */
    target: text("target").notNull(),
    status: text("status", { enum: AUDIT_STATUSES }).notNull(),
    dryRun: integer("dry_run", { mode: "boolean" }).notNull().default(false),
    /** JSON details: the diff, the backup location, the error. */
    details: text("details").notNull().default("{}"),
    /** Where the previous state was saved, for rollback. */
    backupPath: text("backup_path"),
  },
  (t) => [index("audit_log_action_idx").on(t.action, t.createdAt)],
);

export const API_SCOPES = ["read", "admin"] as const;

/** API tokens for TCP callers (`Authorization: Bearer`): only a SHA-256 of the secret is kept. */
export const apiTokens = sqliteTable("api_tokens", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  scope: text("scope", { enum: API_SCOPES }).notNull(),
  /** SHA-256 of the token, lowercase hex. */
  tokenHash: text("token_hash").notNull().unique(),
  /** Who created it (a caller label: "uid 0 (root)", "token ci"). */
  createdBy: text("created_by").notNull(),
  createdAt: createdAt(),
  lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
});

/** One-time login codes a browser exchanges for a session cookie. */
export const loginCodes = sqliteTable("login_codes", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  codeHash: text("code_hash").notNull().unique(),
  scope: text("scope", { enum: API_SCOPES }).notNull(),
  createdBy: text("created_by").notNull(),
  createdAt: createdAt(),
  expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  usedAt: integer("used_at", { mode: "timestamp_ms" }),
});

/** Browser sessions (HttpOnly SameSite=Strict cookie); only a SHA-256 of the cookie's secret is kept. */
export const browserSessions = sqliteTable("browser_sessions", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  secretHash: text("secret_hash").notNull().unique(),
  scope: text("scope", { enum: API_SCOPES }).notNull(),
  /** Who made the login code it came from. */
  createdBy: text("created_by").notNull(),
  remoteIp: text("remote_ip"),
  createdAt: createdAt(),
  expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
});

// ---------------------------------------------------------------------------
// Setup flow: the guided, resumable way from a fresh install to a VM on the
// passed-through GPU (src/setup/). One row per step, one row of choices.
// ---------------------------------------------------------------------------

export const SETUP_STEP_STATES = ["pending", "running", "done", "waiting", "failed", "skipped"] as const;

/** Each step of the setup flow and where it stands; a row exists once the step was touched. */
export const setupSteps = sqliteTable("setup_steps", {
  /** Step id (src/setup/model.ts SETUP_STEPS). */
  id: text("id").primaryKey(),
  state: text("state", { enum: SETUP_STEP_STATES }).notNull(),
  detail: text("detail").notNull().default(""),
  advice: text("advice"),
  waitingFor: text("waiting_for"),
  errorCode: text("error_code"),
  errorMessage: text("error_message"),
  /** Step-specific facts, a JSON object. */
  result: text("result", { mode: "json" }).$type<Record<string, unknown>>(),
  attempts: integer("attempts").notNull().default(0),
  startedAt: integer("started_at", { mode: "timestamp_ms" }),
  finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
  updatedAt: integer("updated_at", { mode: "timestamp_ms" }),
});

/** The user's choices for the setup flow (one row, id 1): GPU, VM name, install media, account. */
export const setupOptions = sqliteTable("setup_options", {
  id: integer("id").primaryKey(),
  /** A JSON object (src/setup/model.ts SetupOptions). */
  options: text("options", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  updatedAt: integer("updated_at", { mode: "timestamp_ms" }),
});
// ─── Data migration (Windows disk / directory → Linux home) ─────────────────────────────────

export const MIGRATION_STATUSES = ["planned", "running", "interrupted", "done", "failed", "undone"] as const;

/** One migration: its saved plan, its run's state and its report. */
export const migrations = sqliteTable("migrations", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  status: text("status", { enum: MIGRATION_STATUSES }).notNull(),
  /** What was given as the source (a directory, an image file, a block device, vm:NAME). */
  source: text("source").notNull(),
  /** JSON: the plan (src/migration/model.ts Plan, without its id and status). */
  plan: text("plan").notNull(),
  /** JSON: the run's options (policy, users, targets). */
  options: text("options").notNull().default("{}"),
  createdAt: createdAt(),
  startedAt: integer("started_at", { mode: "timestamp_ms" }),
  finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
  /** JSON: the report (src/migration/model.ts Report) once a run ended. */
  report: text("report"),
  /**
   * JSON: what the plan's scan saw beside its files (src/migration/journal.ts ScanRecord): the
   * folders it read with their times (a run reuses the scan while none changed), the links not
   * followed and what could not be read.
   */
  scan: text("scan"),
});

export const MIGRATION_ENTRY_KINDS = ["file", "dir", "generated", "displaced"] as const;
export const MIGRATION_ENTRY_STATES = ["pending", "done", "skipped", "failed", "undone", "kept"] as const;

/**
 * The run's journal: one row per file or directory a migration creates (or would create).
 * A resumed run does the pending rows; undo removes the done ones whose checksum still matches.
 */
export const migrationEntries = sqliteTable(
  "migration_entries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    migrationId: integer("migration_id")
      .notNull()
      .references(() => migrations.id, { onDelete: "cascade" }),
    /** The plan item it belongs to. */
    item: text("item").notNull(),
    kind: text("kind", { enum: MIGRATION_ENTRY_KINDS }).notNull(),
    /** Relative to the source root (empty for generated files). */
    sourcePath: text("source_path").notNull(),
    /** Absolute path the entry was (or will be) written to. */
    targetPath: text("target_path").notNull(),
    size: integer("size").notNull().default(0),
    state: text("state", { enum: MIGRATION_ENTRY_STATES }).notNull().default("pending"),
    /** xxh128-z64k (native/migrate.h) of what was written, hex. */
    digest: text("digest"),
    /** Why it was skipped, renamed or failed ("exists", "identical", "windows-name", an error). */
    note: text("note"),
    /** For kind displaced: where the earlier file was moved (undo moves it back). */
    movedTo: text("moved_to"),
    /** Permission bits the entry is written with (from its rule). */
    mode: integer("mode"),
    /**
     * JSON: what NTFS keeps beside the data (src/migration/ntfs-meta.ts EntryMeta): Windows
     * attributes (hidden, system, ...) and named data streams (alternate data streams).
     */
    meta: text("meta"),
  },
  (t) => [index("migration_entries_run_idx").on(t.migrationId, t.state)],
);
// ─── end of data migration ───────────────────────────────────────────────────────────────────
// ===== lumen/1 (native stream protocol) =====

/** Clients paired over lumen/1 by PIN (SPAKE2): the pairing key proves them on later connections. */
export const lumenPairings = sqliteTable("lumen_pairings", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  /** The id the client chose (letters, digits, ._:-; at most 128). */
  clientId: text("client_id").notNull().unique(),
  name: text("name").notNull(),
  /** 32-byte key from the SPAKE2 exchange, lowercase hex. */
  pairingKey: text("pairing_key").notNull(),
  createdAt: createdAt(),
  lastSeenAt: integer("last_seen_at", { mode: "timestamp_ms" }),
});
