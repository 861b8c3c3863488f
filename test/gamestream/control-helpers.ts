/** A GameStream host for control-stream tests: short peer timeout, injectable input backend. */
import { join } from "node:path";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { AppsService } from "../../src/apps/service.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { pairingsRepo, type PairingsRepo } from "../../src/db/repos/pairings.ts";
import { GS_PERMISSIONS } from "../../src/gamestream/permissions.ts";
import { openDatabase } from "../../src/db/client.ts";
import { CODEC } from "../../src/gamestream/constants.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import type { StreamConfig } from "../../src/gamestream/rtsp/announce.ts";
import { GameStreamService, type GameStreamDeps } from "../../src/gamestream/service.ts";
import type { StreamSession } from "../../src/gamestream/sessions.ts";
import { silentLogger } from "../../src/log.ts";
import type { Config } from "../../src/config.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { freeBasePort } from "./helpers.ts";

export function controlHost(opts: { peerTimeoutMs?: number; inputBackend?: GameStreamDeps["inputBackend"]; stateDir?: string; qmpDir?: string } = {}) {
  const dir = opts.stateDir ? null : tempDir("neuron-ctl-");
  const stateDir = opts.stateDir ?? dir!.path;
  const config = testConfig({ stateDir, qmpDir: opts.qmpDir ?? join(stateDir, "qmp"), gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test" });
  const { db, service } = gameStreamTestService(config, { controlPeerTimeoutMs: opts.peerTimeoutMs, inputBackend: opts.inputBackend });
  return {
    config,
    service,
    stateDir,
    async close() {
      await service.stop();
      db.close();
      dir?.cleanup();
    },
  };
}

/** A GameStream service on its own database (apps seeded), H.264 only; `deps` adds or overrides. */
export function gameStreamTestService(config: Config, deps: Partial<GameStreamDeps> = {}) {
  const db = openDatabase(config.dbPath);
  const apps = new AppsService(appsRepo(db.db));
  apps.seedDefaults();
  const pairings = pairingsRepo(db.db);
  pairTestFingerprint(pairings);
  const service = new GameStreamService({
    config,
    apps,
    pairings,
    crypto: gameStreamCrypto(NativeCrypto.load()),
    log: silentLogger,
    codecModeSupport: () => CODEC.H264,
    ...deps,
  });
  return { db, apps, service };
}

/**
 * The pairing launchSession's sessions belong to (fingerprint "test", every permission): input
 * of a session whose client is not paired is dropped.
 */
export function pairTestFingerprint(pairings: PairingsRepo): void {
  pairings.upsert({ name: "test client", certPem: "", fingerprint: "test", permissions: () => [...GS_PERMISSIONS] });
}

/** A launched session as /launch would make it (random rikey), by the client pairTestFingerprint stores. */
export function launchSession(
  host: { service: GameStreamService },
  vmName: string | null = null,
  app: { appId: number; appName: string; width: number; height: number; fps: number; appKind?: string } = { appId: 1, appName: "Desktop", width: 1280, height: 720, fps: 60 },
) {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const session = host.service.sessions.start({
    ...app, vmName,
    riKey: key.slice(), riKeyId: 7, localAudioPlayMode: 0, surroundAudioInfo: 0x30002,
    remoteControllersBitmap: 1, gcmap: 1, hdr: false, encryptedRtsp: true, clientFingerprint: "test",
  });
  return { key, session };
}

/** What a parsed ANNOUNCE would give the session: H.264 at the session's mode, 1 KiB packets. */
export function setTestStream(session: StreamSession, opts: { bitrateKbps: number; encryptVideo: boolean }): void {
  session.stream = {
    width: session.width, height: session.height, fps: session.fps, packetSize: 1024, bitStreamFormat: 0, codec: "h264", dynamicRangeMode: 0, encoderCscMode: 0,
    colorspace: "rec601", fullRange: false, chromaSamplingType: 0, bitrateKbps: opts.bitrateKbps, fec: { minRequiredFecPackets: 2 },
    maxNumReferenceFrames: 1, slicesPerFrame: 1, audio: { channels: 2, channelMask: 3, highQuality: false, packetDurationMs: 5 },
    encryption: { mask: opts.encryptVideo ? 3 : 1, control: true, video: opts.encryptVideo, audio: false }, clientFeatureFlags: 0,
  } satisfies StreamConfig;
}
