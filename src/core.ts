/**
 * createCore(config): the one place that builds the database connection, the
 * native library and the domain services. The API, the CLI and the GameStream
 * host are adapters over what it returns.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
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
import { VmInputService } from "./input/vm-input.ts";
import { agentGamepadLink } from "./input/agent-link.ts";
import { openDatabase, type OpenedDb } from "./db/client.ts";
import { schemaVersion } from "./db/migrator.ts";
import { createLogger, type Logger } from "./log.ts";
import { NativeLibrary, resolveNativePath, type NativeLocation } from "../ffi/native.ts";
import type { NativeState } from "./system/doctor.ts";
import { SystemService } from "./system/service.ts";
import { NativeCrypto } from "../ffi/crypto.ts";
import { pairingsRepo } from "./db/repos/pairings.ts";
import { AppError } from "./errors.ts";
import type { GameStreamCrypto } from "./gamestream/crypto.ts";
import { gameStreamCrypto } from "./gamestream/native-crypto.ts";
import { nodeGameStreamCrypto } from "./gamestream/node-crypto.ts";
import { GameStreamService } from "./gamestream/service.ts";
import { createIdentityOffLoop, opensslRsaKey } from "./gamestream/identity.ts";
import { CodecSupport, type SpeedMeter } from "./gamestream/codecs.ts";
import type { VmService } from "./vm/service.ts";
import { hardwarePassthrough } from "./vm/hardware-passthrough.ts";
import { createVmService } from "./vm/wire.ts";
import { snapshotsRepo, updatesRepo } from "./db/repos/updates.ts";
import { SnapshotService } from "./snapshots/service.ts";
import { UpdatesService } from "./updates/service.ts";
import { EventBus } from "./events/bus.ts";
import { setupRepo } from "./db/repos/setup.ts";
import { answerMediaBuilder } from "./setup/answer-media.ts";
import { SetupService } from "./setup/service.ts";
import { migrationsRepo } from "./db/repos/migrations.ts";
import { MigrationService } from "./migration/service.ts";
import { LumenService } from "./lumen/service.ts";
import { lumenPairingsRepo } from "./db/repos/lumen.ts";
import { captureSourceSettings } from "./capture/wire.ts";

export interface CoreOptions {
  /** Path of the native library embedded in the compiled executable, if any. */
  embeddedNativeLib?: string;
  logger?: Logger;
  /** Refuse to build the core without the native library (serve does). */
  requireNative?: boolean;
  /** ServerCodecModeSupport override (tests); default: probed from the encoders this machine has. */
  codecModeSupport?: () => number;
  /** Times the encoders for the codec offer; default: in this process (serve: a child process). */
  speedMeter?: SpeedMeter;
  /** VM → agent socket paths; default: libvirt's domain XML through virsh. */
  agentSocketResolver?: SocketResolver;
}

export interface Core {
  config: Config;
  log: Logger;
  database: OpenedDb;
  /** libneuron, loaded (dlopen, ABI check) on first use: it pulls in libavcodec and ~100 libraries. */
  readonly native: NativeLibrary | null;
  /** Loads the native library if it is not yet. */
  readonly nativeState: NativeState;
  /** The library's path if it was found, without loading it. */
  nativePath: string | null;
  /**
   * Creates the GameStream identity if the state dir has none, its RSA key made by a child
   * `openssl genrsa` so the event loop keeps serving (`serve` awaits it before starting the host).
   */
  prepareGameStream(): Promise<void>;
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
  /** The lumen/1 host (native stream protocol); built on first use, started by `serve` when lumenEnabled. */
  lumen(): LumenService;
  capture: CaptureService;
  /** The codecs offered to Moonlight clients: H.264 until codecs.measure() ran (serve starts it after start-up). */
  codecs: CodecSupport;
  vms: VmService;
  guest: GuestService;
  /** Input into VMs: the inject-input API, its WebSocket, `input send`. */
  input: VmInputService;
  /** Snapshots of the system root (btrfs or snapper). */
  snapshots: SnapshotService;
  /** System updates inside snapshots, health verification, rollback. */
  updates: UpdatesService;
  /** What happened, for /api/v1/events and other listeners. */
  events: EventBus;
  /** The guided setup flow (detect → VFIO → reboot → VM → unattended install → app). */
  setup: SetupService;
  /** Moving a person's Windows data (a disk, an image, a folder) into a Linux home. */
  migration: MigrationService;
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
  let nativePath: string | null = null;
  let notFound: string | null = null;
  try {
    nativePath = resolveNativePath(nativeLocation(config, opts.embeddedNativeLib));
  } catch (err) {
    notFound = (err as Error).message;
  }
  if (opts.requireNative && !nativePath) throw new Error(notFound ?? "native library unavailable");
  let loaded: { lib: NativeLibrary | null; state: NativeState } | null = notFound
    ? { lib: null, state: { version: null, path: null, error: notFound } }
    : null;
  const native = () => (loaded ??= loadNative(config, opts.embeddedNativeLib));
  /** The path once the library loaded (ABI checked); else an error saying why not. */
  const loadedPath = (): string => {
    const n = native();
    if (!n.lib) throw new AppError("NATIVE_UNAVAILABLE", `the native library is not loaded: ${n.state.error}`, { status: 503 });
    return n.lib.path;
  };
  const events = new EventBus();
  const database = openDatabase(config.dbPath);
  if (database.migration.applied.length) log.info("database migrated", { applied: database.migration.applied });
  const apps = new AppsService(appsRepo(database.db), join(config.stateDir, "boxart"));
  if (database.migration.applied.includes("0000_init")) apps.seedDefaults();
  const auth = new AuthService(database.db, config, log.child({ module: "auth" }));
  const users = userDb(config.etcDir);
  const hosts = hostPolicy({ bindHost: config.host, extraNames: config.apiHostnames, machineName: config.hostname });
  const capture = new CaptureService(config.shmDir, nativePath ? loadedPath : null, captureSourceSettings(config));
  const codecs = new CodecSupport(opts.speedMeter ?? capture, config.gamestreamCodecs, log.child({ component: "codecs" }));
  const codecModeSupport = opts.codecModeSupport ?? (() => codecs.bits());
  const system = new SystemService(config, () => native().state, () => schemaVersion(database.sqlite), () => codecs.report());
  const hardware = new HardwareService(hardwareSettings(config));
  const vfio = new VfioService(vfioSettings(config), hardware, auditRepo(database.db));
  let crypto: NativeCrypto | null = null;
  let gamestream: GameStreamService | null = null;
  let lumen: LumenService | null = null;
  const vms = createVmService(config, database.db, hardwarePassthrough(hardware), events);
  const guest = new GuestService({
    stateDir: config.stateDir,
    openssl: config.bin.openssl,
    settings: config.guestAgent,
    resolve: opts.agentSocketResolver ?? virshSocketResolver({ virsh: config.bin.virsh, uri: config.libvirtUri }),
    log: log.child({ module: "guest" }),
  });
  const input = new VmInputService({
    qmpDir: config.qmpDir,
    settings: config.input,
    nativePath: loadedPath,
    log: log.child({ module: "input" }),
    gamepadLink: (vm) => agentGamepadLink(guest, vm),
    hostUinput: existsSync(config.uinputDevice),
    uinputPath: config.uinputDevice,
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
  const setup = new SetupService({
    repo: setupRepo(database.db),
    events,
    log: log.child({ module: "setup" }),
    settings: {
      root: config.root,
      stateDir: config.stateDir,
      shmDir: config.shmDir,
      share: { memoryPercent: config.setup.hostMemoryPercent, memoryMinMiB: config.setup.hostMemoryMinMiB, cpuPercent: config.setup.hostCpuPercent, cpuMin: config.setup.hostCpuMin },
      guestWaitMs: config.setup.guestWaitMs,
      qmpDir: config.qmpDir,
    },
    hardware,
    vfio,
    vms,
    guest,
    capture,
    apps,
    answerMedia: answerMediaBuilder(config),
  });
  const migration = new MigrationService({
    repo: migrationsRepo(database.db),
    settings: config.migration,
    stateDir: config.stateDir,
    etcDir: config.etcDir,
    nativePath: loadedPath,
    events,
    log: log.child({ module: "migration" }),
    guest,
  });
  const gameStreamCryptoLib = (): NativeCrypto => {
    const n = native();
    if (!n.lib) throw new AppError("GAMESTREAM_UNAVAILABLE", `GameStream needs the native library: ${n.state.error}`, { status: 503 });
    crypto ??= NativeCrypto.load({ explicit: n.lib.path });
    return crypto;
  };
  // identity, pairing and client certificates over node:crypto, so the host starts without
  // libneuron (and the ~100 libraries it links); AES-GCM (encrypted RTSP) loads it, in a session
  let gsCrypto: GameStreamCrypto | null = null;
  const hostCrypto = () => (gsCrypto ??= nodeGameStreamCrypto((key) => gameStreamCrypto(gameStreamCryptoLib()).aesGcm(key)));
  return {
    config,
    log,
    database,
    events,
    setup,
    migration,
    snapshots,
    updates,
    get native() {
      return native().lib;
    },
    get nativeState() {
      return native().state;
    },
    nativePath,
    apps,
    auth,
    users,
    hosts,
    system,
    async prepareGameStream() {
      const c = hostCrypto();
      try {
        if (await createIdentityOffLoop(config.stateDir, c, () => opensslRsaKey(config.bin.openssl))) log.info("GameStream identity created", { stateDir: config.stateDir });
      } catch (err) {
        // the synchronous in-process path makes it when the host starts
        log.warn("GameStream identity: openssl genrsa failed; generating in process", { error: err });
      }
    },
    gamestream() {
      if (gamestream) return gamestream;
      if (!nativePath) throw new AppError("GAMESTREAM_UNAVAILABLE", `GameStream needs the native library: ${notFound}`, { status: 503 });
      gamestream = new GameStreamService({
        config,
        apps,
        pairings: pairingsRepo(database.db),
        audit: auditRepo(database.db),
        crypto: hostCrypto(),
        log: log.child({ component: "gamestream" }),
        codecModeSupport,
        nativePath,
        gamepadLink: (vm) => agentGamepadLink(guest, vm),
        events,
        vmInput: (vm, onRumble) => input.sessionBackend(vm, onRumble),
      });
      return gamestream;
    },
    lumen() {
      if (lumen) return lumen;
      if (!nativePath) throw new AppError("LUMEN_UNAVAILABLE", `lumen/1 needs the native library: ${notFound}`, { status: 503 });
      const gs = this.gamestream();
      const service = new LumenService({
        config,
        nativePath,
        identity: () => ({ keyPem: gs.identity.keyPem, certPem: gs.identity.cert.pem, fingerprint: gs.identity.cert.fingerprint }),
        store: lumenPairingsRepo(database.db),
        events,
        log: log.child({ component: "lumen" }),
      });
      // the PIN of a waiting lumen/1 client is entered like a Moonlight client's (pair --pin, the pairing API)
      gs.addPinSource({ pending: () => service.pending(), submit: (pin, attemptId) => service.submitPin(pin, attemptId) });
      lumen = service;
      return lumen;
    },
    hardware,
    vfio,
    capture,
    codecs,
    vms,
    guest,
    input,
    close() {
      migration.close();
      void input.close();
      void codecs.close();
      guest.close();
      capture.close();
      database.close();
      crypto?.close();
      loaded?.lib?.close();
    },
  };
}
