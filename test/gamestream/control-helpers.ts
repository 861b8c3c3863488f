/** A GameStream host for control-stream tests: short peer timeout, injectable input backend. */
import { join } from "node:path";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { AppsService } from "../../src/apps/service.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { pairingsRepo } from "../../src/db/repos/pairings.ts";
import { openDatabase } from "../../src/db/client.ts";
import { CODEC } from "../../src/gamestream/nvhttp.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { GameStreamService, type GameStreamDeps } from "../../src/gamestream/service.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { freeBasePort } from "./helpers.ts";

export function controlHost(opts: { peerTimeoutMs?: number; inputBackend?: GameStreamDeps["inputBackend"]; stateDir?: string; qmpDir?: string } = {}) {
  const dir = opts.stateDir ? null : tempDir("neuron-ctl-");
  const stateDir = opts.stateDir ?? dir!.path;
  const config = testConfig({ stateDir, qmpDir: opts.qmpDir ?? join(stateDir, "qmp"), gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test" });
  const db = openDatabase(config.dbPath);
  const apps = new AppsService(appsRepo(db.db));
  apps.seedDefaults();
  const service = new GameStreamService({
    config,
    apps,
    pairings: pairingsRepo(db.db),
    crypto: gameStreamCrypto(NativeCrypto.load()),
    log: silentLogger,
    codecModeSupport: () => CODEC.H264,
    controlPeerTimeoutMs: opts.peerTimeoutMs,
    inputBackend: opts.inputBackend,
  });
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

/** A launched session as /launch would make it (random rikey). */
export function launchSession(host: { service: GameStreamService }, vmName: string | null = null) {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const session = host.service.sessions.start({
    appId: 1, appName: "Desktop", vmName, width: 1280, height: 720, fps: 60,
    riKey: key.slice(), riKeyId: 7, localAudioPlayMode: 0, surroundAudioInfo: 0x30002,
    remoteControllersBitmap: 1, gcmap: 1, hdr: false, encryptedRtsp: true, clientFingerprint: "test",
  });
  return { key, session };
}
