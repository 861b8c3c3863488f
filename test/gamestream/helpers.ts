import { NativeCrypto } from "../../ffi/crypto.ts";
import { AppsService } from "../../src/apps/service.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { pairingsRepo } from "../../src/db/repos/pairings.ts";
import { auditRepo } from "../../src/db/repos/audit.ts";
import { openDatabase } from "../../src/db/client.ts";
import { CODEC } from "../../src/gamestream/constants.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { GameStreamService, type GameStreamDeps } from "../../src/gamestream/service.ts";
import { silentLogger, type Logger } from "../../src/log.ts";
import { tempDir, testConfig } from "../helpers/env.ts";

/** A free base port whose HTTP (base), HTTPS (base − 5) and RTSP (base + 21) ports are free on 127.0.0.1. */
export function freeBasePort(): number {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const held: { stop(force?: boolean): void }[] = [];
    try {
      for (const port of [base, base - 5, base + 21]) held.push(Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }));
      return base;
    } catch {
      /* taken: try another */
    } finally {
      for (const h of held) h.stop(true);
    }
  }
  throw new Error("no free port pair");
}

/** A GameStream host on 127.0.0.1 over a fresh (or given) state dir, with the real native crypto. */
export function gameStreamHost(
  opts: { stateDir?: string; pinTimeoutMs?: number; codecModeSupport?: number; rtspRequestTimeoutMs?: number; nativePath?: string; log?: Logger; config?: Record<string, unknown>; controlPeerTimeoutMs?: number; inputBackend?: GameStreamDeps["inputBackend"]; httpHeadTimeoutMs?: number } = {},
) {
  const dir = opts.stateDir ? null : tempDir("neuron-gs-");
  const stateDir = opts.stateDir ?? dir!.path;
  const config = testConfig({ stateDir, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test", pairingPinTimeoutMs: opts.pinTimeoutMs ?? 10_000, ...opts.config });
  const db = openDatabase(config.dbPath);
  const apps = new AppsService(appsRepo(db.db));
  apps.seedDefaults();
  const native = NativeCrypto.load();
  const service = new GameStreamService({
    config,
    apps,
    pairings: pairingsRepo(db.db),
    audit: auditRepo(db.db),
    crypto: gameStreamCrypto(native),
    log: opts.log ?? silentLogger,
    controlPeerTimeoutMs: opts.controlPeerTimeoutMs,
    inputBackend: opts.inputBackend,
    httpHeadTimeoutMs: opts.httpHeadTimeoutMs,
    codecModeSupport: () => opts.codecModeSupport ?? CODEC.H264,
    rtspRequestTimeoutMs: opts.rtspRequestTimeoutMs,
    nativePath: opts.nativePath,
  });
  return {
    config,
    apps,
    service,
    db,
    async close() {
      await service.stop();
      db.close();
      dir?.cleanup();
    },
  };
}
