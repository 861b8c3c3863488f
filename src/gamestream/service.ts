/**
 * The GameStream host: identity, pairing, paired clients, launch sessions and
 * the nvhttp listeners, built from config. The management API and the CLI
 * reach pairing and sessions through this service.
 */
import { hostname as osHostname } from "node:os";
import type { z } from "zod";
import type { EndedSessionInfo, Pairing, StreamSessionInfo } from "./model.ts";
import type { AppsService } from "../apps/service.ts";
import type { Config } from "../config.ts";
import type { AuditRepo, AuditStatus } from "../db/repos/audit.ts";
import type { PairingRow, PairingsRepo } from "../db/repos/pairings.ts";
import { AppError, notFound } from "../errors.ts";
import type { Logger } from "../log.ts";
import { PairedClients } from "./clients.ts";
import type { GameStreamCrypto } from "./crypto.ts";
import { loadOrCreateIdentity, type HostIdentity } from "./identity.ts";
import { portsFromBase, type GameStreamPorts } from "./constants.ts";
import { createNvHttp } from "./nvhttp.ts";
import { PairingManager, type PairingEvent, type PendingPairing } from "./pairing.ts";
import type { EventBus } from "../events/bus.ts";

/** How often session.stats goes out while sessions run. */
export const SESSION_STATS_EVERY_MS = 1000;
import { normalizePermissions, permissionForInput, type GsPermission } from "./permissions.ts";
import { startNvListeners, type NvListeners } from "./server.ts";
import { hostHeaderCheck } from "./host-check.ts";
import { advertiseGameStream, type MdnsAdvert } from "./mdns.ts";
import { SessionStore, type SessionEndReason, type StreamSession } from "./sessions.ts";
import { ENCRYPTION, type HostCapabilities } from "./rtsp/describe.ts";
import { createRtspHandler } from "./rtsp/handler.ts";
import { startRtspServer, type RtspListener } from "./rtsp/server.ts";
import { attachVideoStream, type AttachedVideo } from "./video/attach.ts";
import { captureSourceSettings, vmTransportResolver } from "../capture/wire.ts";
import type { VmTransportChoice } from "../capture/sources.ts";
import type { HostSessionEnv } from "../capture/host-output.ts";
import { HostSessionInputBackend } from "../input/host-session-backend.ts";
import { loadKeyTable } from "../input/keymap.ts";
import { ControlServer } from "./control/server.ts";
import { defaultSessionInputBackend } from "./control/input-backend.ts";
import type { PadRumble } from "../input/agent-backend.ts";
import type { GamepadLink } from "../input/agent-backend.ts";
import type { InputBackend } from "../input/backend.ts";
import { AudioService } from "./audio/service.ts";
import { MAX_SESSION_KBPS, MIN_SESSION_KBPS, type SourceEnd } from "./video/stream.ts";
import type { VmStateProbe } from "./video/vm-liveness.ts";
import { virshStateProbe } from "./video/vm-state.ts";

export interface GameStreamDeps {
  config: Config;
  /** Where pairing requests and outcomes, session starts, ends and statistics are published (pairing.*, session.*). */
  events?: Pick<EventBus, "publish">;
  apps: AppsService;
  pairings: PairingsRepo;
  /** Where pairing events and permission changes are recorded (absent: the log only). */
  audit?: AuditRepo;
  crypto: GameStreamCrypto;
  log: Logger;
  /** ServerCodecModeSupport bits of the encoders this machine really has. */
  codecModeSupport: () => number;
  /** What the streaming part supports beyond codecs (RTSP DESCRIBE); defaults in streamCapabilities(). */
  streamCapabilities?: Partial<Omit<HostCapabilities, "codecModeSupport">>;
  /** HTTP(S) ports: time from accept to a whole request head, TLS handshake included (ms, default 10 s). */
  httpHeadTimeoutMs?: number;
  /** RTSP: time a connection has to deliver its request (ms). */
  rtspRequestTimeoutMs?: number;
  /** Control stream: time without a client message before the session ends (ms, default 10 s). */
  controlPeerTimeoutMs?: number;
  /** The input backend of a session (default: the VM's QMP socket, or counting only without a VM). */
  inputBackend?: (session: StreamSession) => Promise<InputBackend>;
  /** A session's input on its VM's shared input hub (vm-input.ts); absent: QMP of its own. */
  vmInput?: (vm: string, onRumble?: (r: PadRumble) => void) => Promise<InputBackend>;
  /** Reaches a VM's guest agent for virtual gamepads (default input backend only; absent: no gamepads). */
  gamepadLink?: (vm: string) => GamepadLink;
  /** libneuron.so for the video and audio streams (encode, FEC, crypto, sending); absent: neither is served. */
  nativePath?: string;
  /** libvirt's state of a VM (default: virsh on config.libvirtUri): a VM source ends when its VM shuts down. */
  vmState?: VmStateProbe;
  /** Liveness tuning of VM sources (tests). */
  sourceLiveness?: { stallMs?: number; checkIntervalMs?: number };
  /** Hears why a session's source ended (e.g. "VM win11 shut down"), just before the session ends. */
  onSourceEnded?: (session: StreamSession, end: SourceEnd) => void;
  /** The host's desktop session (bus, PipeWire socket) for host-desktop apps (default: the configured desktop user's). */
  hostSession?: () => HostSessionEnv;
  /** How a VM without shared memory exports its frames (default: its libvirt definition, capture/wire.ts). */
  vmTransport?: (vm: string) => Promise<VmTransportChoice>;
}

/** A paired client as the API reports it (the Pairing schema). */
export type PairedClient = z.output<typeof Pairing>;

/** A running stream session as the API reports it (the StreamSession schema). */
export type SessionInfo = z.output<typeof StreamSessionInfo>;
/** A session that ended, as the API reports it. */
export type EndedSession = z.output<typeof EndedSessionInfo>;

export class GameStreamService {
  readonly identity: HostIdentity;
  readonly ports: GameStreamPorts;
  readonly sessions: SessionStore;
  readonly hostname: string;
  private readonly clients: PairedClients;
  private readonly pairing: PairingManager;
  private listeners: NvListeners | null = null;
  private rtsp: RtspListener | null = null;
  private mdns: MdnsAdvert | null = null;
  /**
   * The video stream (UDP base + 9), from the first PLAY while started (libneuron is loaded
   * then, not when the host starts); requestIdr(sessionId) for the control stream.
   */
  video: AttachedVideo | null = null;
  private videoOnPlay: (() => void) | null = null;
  private readonly controlServer: ControlServer;
  private readonly audio: AudioService | null;

  constructor(private readonly deps: GameStreamDeps) {
    const { config, crypto, log } = deps;
    this.sessions = new SessionStore((err, e) => log.error("session event listener failed", { event: e.type, session: e.session.id, error: err }), config.gamestreamMaxSessions);
    this.sessions.subscribe((e) => {
      if (e.type === "ended") log.info("session ended", { session: e.session.id, reason: e.reason, detail: e.detail, client: e.session.clientName, sessions: this.sessions.size });
    });
    if (deps.events) this.publishSessions(deps.events);
    this.identity = loadOrCreateIdentity(config.stateDir, crypto);
    this.ports = portsFromBase(config.gamestreamPort);
    this.hostname = config.hostname ?? osHostname();
    this.clients = new PairedClients(deps.pairings, crypto);
    this.pairing = new PairingManager(this.identity, crypto, {
      pinTimeoutMs: config.pairingPinTimeoutMs,
      idleTimeoutMs: 60_000,
      maxAttemptsPerMinute: config.pairingAttemptsPerMinute,
      store: ({ name, cert }) => void this.clients.add(name, cert.pem, cert.fingerprint),
      onEvent: (e) => this.onPairingEvent(e),
    });
    this.controlServer = new ControlServer({
      host: config.gamestreamHost,
      port: this.ports.control,
      sessions: this.sessions,
      cipher: (key) => crypto.aesGcm(key),
      inputBackend: deps.inputBackend ?? this.sessionInputBackend(defaultSessionInputBackend(config.qmpDir, log.child({ component: "input" }), deps.gamepadLink, (id, r) => void this.controlServer.rumble(id, r), deps.vmInput)),
      log: log.child({ component: "control" }),
      peerTimeoutMs: deps.controlPeerTimeoutMs ?? config.gamestreamControlTimeoutMs,
      // every session's client, and as many slots again for connects being refused meanwhile
      maxPeers: Math.max(8, 2 * config.gamestreamMaxSessions),
      // keyboard / mouse / controller events of a client lacking the permission are dropped (counted in the input stats)
      inputAdmission: (session) => (ev) => {
        const need = permissionForInput(ev.kind);
        return this.clients.allows(session.clientFingerprint, need) ? null : need;
      },
    });
    // the client's IDR requests and reference invalidations make the video's next frame an IDR
    this.controlServer.subscribe((e) => {
      if (e.type === "idr-request" || e.type === "invalidate-refs") this.video?.requestIdr(e.sessionId);
    });
    this.audio = deps.nativePath
      ? new AudioService(this.sessions, {
          host: config.gamestreamHost,
          port: this.ports.audio,
          nativePath: deps.nativePath,
          source: { command: config.gamestreamAudio.captureCommand, pulseServer: config.gamestreamAudio.pulseServer, parec: config.gamestreamAudio.parec },
          pactl: config.bin.pactl,
          log: log.child({ component: "audio" }),
        })
      : null;
  }

  /**
   * What RTSP DESCRIBE advertises: the encoders' codec bits; encryption of control
   * (requested), video and audio; reference-frame invalidation.
   */
  streamCapabilities(): HostCapabilities {
    return {
      codecModeSupport: this.deps.codecModeSupport(),
      encryptionSupported: ENCRYPTION.CONTROL | ENCRYPTION.VIDEO | ENCRYPTION.AUDIO,
      encryptionRequested: ENCRYPTION.CONTROL,
      featureFlags: 0,
      refPicInvalidation: true,
      ...this.deps.streamCapabilities,
    };
  }

  /** Starts the HTTP, HTTPS and RTSP listeners; returns the ports bound. */
  async start(): Promise<{ http: number; https: number; rtsp: number }> {
    const handler = createNvHttp({
      identity: this.identity,
      crypto: this.deps.crypto,
      pairing: this.pairing,
      sessions: this.sessions,
      apps: this.deps.apps,
      clients: this.clients,
      ports: this.ports,
      hostname: this.hostname,
      codecModeSupport: this.deps.codecModeSupport,
      log: this.deps.log.child({ component: "gamestream" }),
      onClientUnpaired: (row, address) => this.pairingRemoved(row, "client", address),
    });
    this.listeners = await startNvListeners({
      host: this.deps.config.gamestreamHost,
      httpPort: this.ports.http,
      httpsPort: this.ports.https,
      keyPem: this.identity.keyPem,
      certPem: this.identity.cert.pem,
      handler,
      log: this.deps.log,
      hostCheck: hostHeaderCheck({ hostname: this.hostname, names: this.deps.config.gamestreamHostNames }),
      headTimeoutMs: this.deps.httpHeadTimeoutMs,
    });
    try {
      this.rtsp = await startRtspServer({
        host: this.deps.config.gamestreamHost,
        port: this.ports.rtsp,
        sessions: this.sessions,
        handler: createRtspHandler({
          ports: this.ports,
          sessions: this.sessions,
          capabilities: () => this.streamCapabilities(),
          log: this.deps.log.child({ component: "rtsp" }),
        }),
        cipher: (key) => this.deps.crypto.aesGcm(key),
        log: this.deps.log.child({ component: "rtsp" }),
        requestTimeoutMs: this.deps.rtspRequestTimeoutMs,
      });
    } catch (err) {
      await this.listeners.close();
      this.listeners = null;
      throw err;
    }
    const nativePath = this.deps.nativePath;
    if (nativePath) {
      // the first PLAY opens the video stream, then hands it that PLAY; a failure is logged as a
      // video that could not start, and the next PLAY tries again
      this.videoOnPlay = this.sessions.subscribe((e) => {
        if (e.type !== "playing" || this.video) return;
        try {
          this.video = attachVideoStream({
            nativePath,
            sessions: this.sessions,
            host: this.deps.config.gamestreamHost,
            port: this.ports.video,
            shmDir: this.deps.config.shmDir,
            log: this.deps.log.child({ component: "video" }),
            vmState: this.deps.vmState ?? virshStateProbe(this.deps.config.bin.virsh, this.deps.config.libvirtUri),
            liveness: this.deps.sourceLiveness,
            onSourceEnded: this.deps.onSourceEnded,
            hostSession: this.deps.hostSession ?? captureSourceSettings(this.deps.config).hostSession,
            vmTransport: this.deps.vmTransport ?? vmTransportResolver(this.deps.config),
          });
        } catch (err) {
          this.deps.log.error("video stream could not start", { session: e.session.id, error: err });
          return;
        }
        this.videoOnPlay?.();
        this.videoOnPlay = null;
        this.video.handle(e);
      });
    }
    // the control stream (ENet on UDP base + 10, polled every few ms) opens with the first
    // session, before its launch answers: clients connect to it only for a session
    this.sessions.beforeStart = () => {
      this.controlServer.start();
      this.sessions.beforeStart = null;
    };
    if (this.deps.config.mdns) {
      this.mdns = advertiseGameStream({ name: this.hostname, port: this.listeners.httpPort, log: this.deps.log });
      this.deps.log.info("advertising over mDNS", { service: `${this.hostname}._nvstream._tcp.local`, port: this.listeners.httpPort });
    }
    return { http: this.listeners.httpPort, https: this.listeners.httpsPort, rtsp: this.rtsp.port };
  }

  /**
   * Host-desktop sessions take input through their output's compositor session (Mutter's
   * RemoteDesktop, linked to the stream); every other session through `other`.
   */
  private sessionInputBackend(other: (session: StreamSession) => Promise<InputBackend>): (session: StreamSession) => Promise<InputBackend> {
    return async (session) => {
      const nativePath = this.deps.nativePath;
      if (session.appKind !== "host-desktop" || !nativePath) return other(session);
      return new HostSessionInputBackend({
        target: () => this.video?.stream.get(session.id)?.hostInput ?? null,
        keys: loadKeyTable(nativePath),
        log: this.deps.log.child({ component: "input", session: session.id }),
      });
    };
  }

  /** Requests the HTTP(S) ports refused before any work, by reason (status414, status431, host, headTimeout, connectionsPerAddress, ...). */
  httpRefusals(): Record<string, number> {
    return this.listeners?.refused() ?? {};
  }

  /** The control stream: subscribe to IDR requests, invalidations and FEC status; send rumble. Listens from the first session after start() to stop(). */
  get control(): ControlServer {
    return this.controlServer;
  }

  /** Other protocols' clients waiting for a PIN (lumen/1): listed and served by the same pairing API. */
  private readonly pinSources: { pending(): PendingPairing[]; submit(pin: string, attemptId?: string): PendingPairing | null }[] = [];

  addPinSource(source: { pending(): PendingPairing[]; submit(pin: string, attemptId?: string): PendingPairing | null }): void {
    this.pinSources.push(source);
  }

  pendingPairings(): PendingPairing[] {
    return [...this.pairing.pending(), ...this.pinSources.flatMap((s) => s.pending())];
  }

  submitPin(pin: string, attemptId?: string): PendingPairing {
    // a Moonlight client first; when none waits (or the attempt id is another protocol's), the other sources
    const own = this.pairing.pending();
    const mine = attemptId ? own.some((p) => p.id === attemptId) : own.length > 0;
    if (!mine) {
      const others = this.pinSources.filter((s) => s.pending().some((p) => !attemptId || p.id === attemptId));
      if (others.length > 1 && !attemptId) throw new AppError("PAIRING_AMBIGUOUS", "several clients are waiting for a PIN; name the attempt id", { status: 409 });
      const hit = others[0]?.submit(pin, attemptId);
      if (hit) return hit;
    }
    return this.pairing.submitPin(pin, attemptId);
  }

  /** Ends a pairing attempt in progress; its client is told it failed, nothing is stored. */
  cancelPairing(attemptId: string): PendingPairing {
    return this.pairing.cancel(attemptId);
  }

  /** session.started / session.ended, and session.stats every second while any session runs. */
  private publishSessions(bus: Pick<EventBus, "publish">): void {
    let timer: ReturnType<typeof setInterval> | null = null;
    const tick = () => {
      if (this.sessions.size === 0) {
        if (timer) clearInterval(timer);
        timer = null;
        return;
      }
      try {
        bus.publish("session.stats", { at: Date.now(), sessions: this.listSessions().map(sessionStats) });
      } catch (err) {
        this.deps.log.warn("session statistics not published", { error: err });
      }
    };
    this.sessions.subscribe((e) => {
      if (e.type === "ended") bus.publish("session.ended", { id: e.session.id, reason: e.reason, detail: e.detail ?? null, client: e.session.clientName ?? null });
      else if (e.type === "playing") bus.publish("session.started", { id: e.session.id, client: e.session.clientName ?? null, app: e.session.appName });
      if (this.sessions.size > 0 && !timer) {
        timer = setInterval(tick, SESSION_STATS_EVERY_MS);
        timer.unref?.();
      }
    });
    this.stopStats = () => {
      if (timer) clearInterval(timer);
      timer = null;
    };
  }

  private stopStats = () => {};

  listPairings(): PairedClient[] {
    return this.clients.list().map((r) => this.pairingInfo(r));
  }

  /**
   * Grants and revokes GameStream permissions of a paired client; applies at once (input of a
   * running session included). Returns the pairing as it is now.
   */
  changePermissions(id: number, change: { grant?: readonly GsPermission[]; revoke?: readonly GsPermission[] }, actor = "api"): PairedClient {
    const row = this.clients.get(id);
    if (!row) throw notFound("pairing", id);
    const grant = change.grant ?? [];
    const revoke = change.revoke ?? [];
    const both = grant.filter((p) => revoke.includes(p));
    if (both.length) throw new AppError("PERMISSION_CONFLICT", `cannot grant and revoke ${both.join(", ")} at once`, { status: 422 });
    const before = normalizePermissions(row.permissions);
    const after = normalizePermissions([...before.filter((p) => !revoke.includes(p)), ...grant]);
    const updated = this.clients.setPermissions(id, after);
    if (!updated) throw notFound("pairing", id);
    const fields = { pairing: id, client: row.name, fingerprint: row.fingerprint, granted: grant, revoked: revoke, before, after };
    this.deps.log.info("pairing permissions changed", fields);
    this.audit(actor, "gamestream.pairing.permissions", `pairing ${id} (${row.name})`, "applied", fields);
    // without view the client may not watch: its running session ends (input rights apply per event anyway)
    if (!after.includes("view")) this.endSessionOf(row.fingerprint, "ended-by-api", "the client's view permission was revoked");
    // an input right taken away: what the client holds pressed is released (its release events would be dropped)
    else if (revoke.some((p) => p === "keyboard" || p === "mouse" || p === "controller")) {
      const s = this.sessions.ofClient(row.fingerprint);
      if (s) void this.controlServer.releaseInput(s.id);
    }
    return this.pairingInfo(updated);
  }

  /** `by`: who asked, for the audit log (the API's caller label). */
  removePairing(id: number, by = "api"): void {
    const row = this.clients.removeById(id);
    if (!row) throw notFound("pairing", id);
    this.pairingRemoved(row, "api", undefined, by);
  }

  private pairingInfo(r: PairingRow): PairedClient {
    return {
      id: r.id,
      name: r.name,
      fingerprint: r.fingerprint,
      certPem: r.certPem,
      permissions: normalizePermissions(r.permissions),
      createdAt: r.createdAt.toISOString(),
      lastSeenAt: r.lastSeenAt ? r.lastSeenAt.toISOString() : null,
    };
  }

  private pairingRemoved(row: PairingRow, actor: "api" | "client", address?: string, by = actor === "api" ? "api" : "gamestream"): void {
    const fields = { pairing: row.id, client: row.name, fingerprint: row.fingerprint, by: actor, ...(address ? { address } : {}) };
    this.deps.log.info("pairing removed", fields);
    this.audit(by, "gamestream.pairing.removed", `pairing ${row.id} (${row.name})`, "applied", fields);
    // an unpaired client streams no more
    if (actor === "api") this.endSessionOf(row.fingerprint, "ended-by-api", "the client was unpaired");
    else this.endSessionOf(row.fingerprint, "cancelled", "the client unpaired itself");
  }

  private endSessionOf(fingerprint: string, reason: SessionEndReason, detail: string): void {
    const s = this.sessions.ofClient(fingerprint);
    if (s) this.sessions.end(s.id, reason, detail);
  }

  private refusalsLogged = 0;

  /** A pairing event: one structured log line (attempt id, address; never the PIN) and an audit row. */
  private onPairingEvent(e: PairingEvent): void {
    const log = this.deps.log;
    const { type, ...fields } = e;
    this.publishPairing(e);
    switch (type) {
      case "refused":
        // rate-limited refusals are unbounded (a host may keep knocking): the log keeps a sample, the audit table none
        if (e.reason === "rate-limited") {
          this.refusalsLogged++;
          if (this.refusalsLogged <= 20 || this.refusalsLogged % 1000 === 0) log.warn("pairing refused", { ...fields, refusedSoFar: this.refusalsLogged });
          return;
        }
        log.warn("pairing refused", fields);
        return this.audit("gamestream", "gamestream.pairing.refused", e.address, "failed", fields);
      case "started":
        log.info("pairing started: waiting for the PIN", fields);
        return this.audit("gamestream", "gamestream.pairing.started", e.address, "planned", fields);
      case "pin-entered":
        log.info("pairing PIN entered", fields);
        return this.audit("api", "gamestream.pairing.pin_entered", e.address, "planned", fields);
      case "wrong-pin":
        log.warn("pairing failed: wrong PIN", fields);
        return this.audit("gamestream", "gamestream.pairing.wrong_pin", e.address, "failed", fields);
      case "expired":
        log.warn("pairing attempt expired", fields);
        return this.audit("gamestream", "gamestream.pairing.expired", e.address, "failed", fields);
      case "failed":
        log.warn("pairing failed", fields);
        return this.audit("gamestream", "gamestream.pairing.failed", e.address, "failed", fields);
      case "cancelled":
        log.info("pairing cancelled on the host", fields);
        return this.audit("api", "gamestream.pairing.cancelled", e.address, "failed", fields);
      case "paired": {
        const row = this.deps.pairings.byFingerprint(e.fingerprint);
        const all = { ...fields, pairing: row?.id, permissions: row ? normalizePermissions(row.permissions) : [] };
        log.info("client paired", all);
        return this.audit("gamestream", "gamestream.pairing.paired", e.address, "applied", all);
      }
    }
  }

  /** pairing.request when a client asks, pairing.outcome for everything after (never the PIN). */
  private publishPairing(e: PairingEvent): void {
    const bus = this.deps.events;
    if (!bus) return;
    if (e.type === "started") return void bus.publish("pairing.request", { attemptId: e.attemptId, deviceName: e.deviceName, address: e.address, createdAt: e.createdAt, expiresAt: e.expiresAt });
    if (e.type === "refused") {
      if (e.reason === "rate-limited" && this.refusalsLogged > 20) return;
      return void bus.publish("pairing.outcome", { attemptId: null, outcome: e.reason === "busy" ? "already-pairing" : "rate-limited", address: e.address, deviceName: null, detail: e.detail });
    }
    const outcome = e.type === "failed" && e.reason.startsWith("superseded") ? "superseded" : e.type;
    const detail =
      e.type === "wrong-pin" ? e.detail : e.type === "failed" ? e.reason : e.type === "expired" ? `no PIN was entered in time (at ${e.phase})` : e.type === "cancelled" ? "cancelled on the host" : e.type === "paired" ? "paired" : "PIN entered";
    bus.publish("pairing.outcome", { attemptId: e.attemptId, outcome, address: e.address, deviceName: e.deviceName, detail });
  }

  private audit(actor: string, action: string, target: string, status: AuditStatus, details: Record<string, unknown>): void {
    try {
      this.deps.audit?.insert({ actor, action, target, status, details: JSON.stringify(details) });
    } catch (err) {
      this.deps.log.error("audit row not written", { action, error: err });
    }
  }

  /** The newest running session (the single-session view of GET /api/v1/gamestream), or null. */
  session(): SessionInfo | null {
    const s = this.sessions.active;
    return s ? this.describe(s) : null;
  }

  /** Every running session, oldest first. */
  listSessions(): SessionInfo[] {
    return this.sessions.list().map((s) => this.describe(s));
  }

  /** One running session; NOT_FOUND when no session has that id. */
  sessionInfo(id: string): SessionInfo {
    const s = this.sessions.get(id);
    if (!s) throw notFound("stream session", id);
    return this.describe(s);
  }

  /** Recently ended sessions, newest first, with why they ended. */
  sessionHistory(): EndedSession[] {
    return this.sessions.history().map((e) => ({
      id: e.id,
      client: { name: e.clientName, fingerprint: e.clientFingerprint, address: e.clientAddress },
      appId: e.appId,
      appName: e.appName,
      width: e.width,
      height: e.height,
      fps: e.fps,
      startedAt: e.startedAt.toISOString(),
      endedAt: e.endedAt.toISOString(),
      reason: e.reason,
      detail: e.detail,
    }));
  }

  private describe(s: StreamSession): SessionInfo {
    const control = this.controlServer.stats(s.id);
    const vs = this.video?.stream.get(s.id);
    const video = vs?.apiStats() ?? null;
    const rates = vs?.rates();
    const audio = this.audio?.info(s.id) ?? null;
    const st = s.stream;
    return {
      id: s.id,
      client: { name: s.clientName ?? null, fingerprint: s.clientFingerprint, uniqueId: s.clientUniqueId ?? null, address: s.clientAddress ?? "" },
      state: s.playing ? "streaming" : "launched",
      codec: st?.codec ?? null,
      bitrateKbps: vs?.bitrateKbps ?? st?.bitrateKbps ?? null,
      framesSent: video?.frames ?? 0,
      hostFps: rates?.hostFps ?? 0,
      latency: { p50Ms: rates?.latencyP50Ms ?? 0, p99Ms: rates?.latencyP99Ms ?? 0, samples: rates?.latencySamples ?? 0 },
      loss: {
        framesLostReported: control?.loss.framesLost ?? 0,
        fecReports: control?.fec.reports ?? 0,
        lostDataShards: control?.fec.lostDataShards ?? 0,
        fecRecoveredFrames: control?.fec.recoveredFrames ?? 0,
        fecUnrecoverableFrames: control?.fec.unrecoverableFrames ?? 0,
      },
      audioSource: audio?.source ?? null,
      appId: s.appId,
      appName: s.appName,
      vmName: s.vmName,
      width: s.width,
      height: s.height,
      fps: s.fps,
      hdr: s.hdr,
      encryptedRtsp: s.encryptedRtsp,
      clientFingerprint: s.clientFingerprint,
      startedAt: s.startedAt.toISOString(),
      control,
      video,
      audio,
    };
  }

  /**
   * Changes a running session's video bitrate live: its encoder takes the new target (and its
   * one-frame VBV) from the next frame on, without a restart or an IDR; the client streams on.
   */
  setSessionBitrate(id: string, kbps: number): SessionInfo {
    const s = this.sessions.get(id);
    if (!s) throw notFound("stream session", id);
    if (!Number.isInteger(kbps) || kbps < MIN_SESSION_KBPS || kbps > MAX_SESSION_KBPS)
      throw new AppError("VALIDATION", `the bitrate must be a whole number of kbps from ${MIN_SESSION_KBPS} to ${MAX_SESSION_KBPS}`, { status: 422 });
    if (!this.video?.stream.setBitrate(id, kbps))
      throw new AppError("SESSION_NO_VIDEO", `stream session ${id} has no video running yet (it starts at RTSP PLAY)`, { status: 409 });
    if (s.stream) s.stream.bitrateKbps = kbps;
    this.deps.events?.publish("session.bitrate", { id, bitrateKbps: kbps, client: s.clientName ?? null });
    return this.describe(s);
  }

  /**
   * Ends one session gracefully (its client gets the control stream's termination, its video and
   * audio stop; the others stream on), or, without an id, every session. False when none ended.
   */
  endSession(id?: string, reason: SessionEndReason = "ended-by-api"): boolean {
    if (id === undefined) return this.sessions.endAll(reason).length > 0;
    return this.sessions.end(id, reason) !== null;
  }

  async stop(): Promise<void> {
    this.stopStats();
    this.pairing.close();
    this.sessions.endAll("host-stopped");
    this.sessions.beforeStart = null;
    this.videoOnPlay?.();
    this.videoOnPlay = null;
    this.video?.close();
    this.video = null;
    await this.controlServer.close();
    await this.audio?.close();
    await this.mdns?.stop();
    this.mdns = null;
    await this.rtsp?.close();
    this.rtsp = null;
    await this.listeners?.close();
    this.listeners = null;
  }
}

/** The figures the console charts, per session (session.stats). */
function sessionStats(s: SessionInfo) {
  return {
    id: s.id,
    client: s.client.name,
    app: s.appName,
    codec: s.codec,
    mode: `${s.width}x${s.height}@${s.fps}${s.hdr ? " HDR" : ""}`,
    hostFps: s.hostFps,
    bitrateKbps: s.bitrateKbps,
    framesSent: s.framesSent,
    framesLost: s.loss.framesLostReported,
    fecRecovered: s.loss.fecRecoveredFrames,
    fecUnrecoverable: s.loss.fecUnrecoverableFrames,
    latencyP50Ms: s.latency.p50Ms,
    latencyP99Ms: s.latency.p99Ms,
  };
}
