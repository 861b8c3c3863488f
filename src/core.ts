/**
 * createCore(config): the one place that builds the database connection, the
 * native library and the domain services. The API, the CLI and the GameStream
 * host are adapters over what it returns.
 */
import { AppsService } from "./apps/service.ts";
import { AuthService } from "./auth/service.ts";
import { hostPolicy, type HostPolicy } from "./auth/hosts.ts";
import { userDb, type UserDb } from "./auth/users.ts";
import { CaptureService } from "./capture/service.ts";
import type { Config } from "./config.ts";
import { appsRepo } from "./db/repos/apps.ts";
import { auditRepo } from "./db/repos/audit.ts";
import { HardwareService, hardwareSettings } from "./hardware/service.ts";
import { VfioService, vfioSettings } from "./vfio/service.ts";
import { virshSocketResolver, type SocketResolver } from "./guest/resolver.ts";
import { GuestService } from "./guest/service.ts";
import { agentGamepadLink } from "./input/agent-link.ts";
import { openDatabase, type OpenedDb } from "./db/client.ts";
import { schemaVersion } from "./db/migrator.ts";
import { createLogger, type Logger } from "./log.ts";
import { NativeLibrary, type NativeLocation } from "../ffi/native.ts";
import type { NativeState } from "./system/doctor.ts";
import { SystemService } from "./system/service.ts";
import { NativeCrypto } from "../ffi/crypto.ts";
import { pairingsRepo } from "./db/repos/pairings.ts";
import { AppError } from "./errors.ts";
import { gameStreamCrypto } from "./gamestream/native-crypto.ts";
import { GameStreamService } from "./gamestream/service.ts";
import { probeCodecModeSupport } from "./gamestream/codecs.ts";
import type { VmService } from "./vm/service.ts";
import { hardwarePassthrough } from "./vm/hardware-passthrough.ts";
import { createVmService } from "./vm/wire.ts";
import { snapshotsRepo, updatesRepo } from "./db/repos/updates.ts";
import { SnapshotService } from "./snapshots/service.ts";
import { UpdatesService } from "./updates/service.ts";

export interface CoreOptions {
  /** Path of the native library embedded in the compiled executable, if any. */
  embeddedNativeLib?: string;
  logger?: Logger;
  /** Refuse to build the core without the native library (serve does). */
  requireNative?: boolean;
  /** ServerCodecModeSupport override (tests); default: probed from the encoders this machine has. */
  codecModeSupport?: () => number;
  /** VM → agent socket paths; default: libvirt's domain XML through virsh. */
  agentSocketResolver?: SocketResolver;
}

export interface Core {
  config: Config;
  log: Logger;
  database: OpenedDb;
  native: NativeLibrary | null;
  nativeState: NativeState;
  apps: AppsService;
  /** API tokens, browser sessions, the audit trail of API calls. */
  auth: AuthService;
  /** Local users and groups (who is on the other end of the local socket). */
  users: UserDb;
  /** The names and addresses the management API answers to. */
  hosts: HostPolicy;
  system: SystemService;
  hardware: HardwareService;
  vfio: VfioService;
  /** The GameStream host, created on first use (its identity is generated then). */
  gamestream(): GameStreamService;
  capture: CaptureService;
  vms: VmService;
  guest: GuestService;
  /** Snapshots of the system root (btrfs or snapper). */
  snapshots: SnapshotService;
  /** System updates inside snapshots, health verification, rollback. */
  updates: UpdatesService;
  close(): void;
}

export function nativeLocation(config: Config, embedded?: string): NativeLocation {
  return { explicit: config.nativeLib, embedded };
}

export function loadNative(config: Config, embedded?: string): { lib: NativeLibrary | null; state: NativeState } {
  try {
    const lib = NativeLibrary.load(nativeLocation(config, embedded));
    return { lib, state: { version: lib.version, path: lib.path, error: null } };
  } catch (err) {
    return { lib: null, state: { version: null, path: null, error: (err as Error).message } };
  }
}

export function createCore(config: Config, opts: CoreOptions = {}): Core {
  const log = opts.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const { lib: native, state: nativeState } = loadNative(config, opts.embeddedNativeLib);
  if (opts.requireNative && !native) throw new Error(nativeState.error ?? "native library unavailable");
  let database: OpenedDb;
  try {
    database = openDatabase(config.dbPath);
  } catch (err) {
    native?.close();
    throw err;
  }
  if (database.migration.applied.length) log.info("database migrated", { applied: database.migration.applied });
  const apps = new AppsService(appsRepo(database.db));
  if (database.migration.applied.includes("0000_init")) apps.seedDefaults();
  const auth = new AuthService(database.db, config, log.child({ module: "auth" }));
  const users = userDb(config.etcDir);
  const hosts = hostPolicy({ bindHost: config.host, extraNames: config.apiHostnames, machineName: config.hostname });
  const system = new SystemService(config, nativeState, () => schemaVersion(database.sqlite));
  const hardware = new HardwareService(hardwareSettings(config));
  const vfio = new VfioService(vfioSettings(config), hardware, auditRepo(database.db));
  let crypto: NativeCrypto | null = null;
  let gamestream: GameStreamService | null = null;
  const capture = new CaptureService(config.shmDir, native?.path ?? null);
  const codecModeSupport = opts.codecModeSupport ?? probeCodecModeSupport(capture, log);
  const vms = createVmService(config, database.db, hardwarePassthrough(hardware));
  const guest = new GuestService({
    stateDir: config.stateDir,
    openssl: config.bin.openssl,
    settings: config.guestAgent,
    resolve: opts.agentSocketResolver ?? virshSocketResolver({ virsh: config.bin.virsh, uri: config.libvirtUri }),
    log: log.child({ module: "guest" }),
  });
  const snapshots = new SnapshotService(snapshotsRepo(database.db), {
    btrfs: config.bin.btrfs,
    snapper: config.bin.snapper,
    snapperConfig: config.updates.snapperConfig,
    bootDir: config.updates.bootDir,
  });
  const updates = new UpdatesService(config, snapshots, updatesRepo(database.db), log.child({ module: "updates" }), () => {
    database.sqlite.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  });
  return {
    config,
    log,
    database,
    snapshots,
    updates,
    native,
    nativeState,
    apps,
    auth,
    users,
    hosts,
    system,
    gamestream() {
      if (gamestream) return gamestream;
      if (!native) throw new AppError("GAMESTREAM_UNAVAILABLE", `GameStream needs the native library: ${nativeState.error}`, { status: 503 });
      crypto ??= NativeCrypto.load({ explicit: native.path });
      gamestream = new GameStreamService({
        config,
        apps,
        pairings: pairingsRepo(database.db),
        crypto: gameStreamCrypto(crypto),
        log: log.child({ component: "gamestream" }),
        codecModeSupport,
        nativePath: native.path,
        gamepadLink: (vm) => agentGamepadLink(guest, vm),
      });
      return gamestream;
    },
    hardware,
    vfio,
    capture,
    vms,
    guest,
    close() {
      guest.close();
      capture.close();
      database.close();
      crypto?.close();
      native?.close();
    },
  };
}
