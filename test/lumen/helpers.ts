/** A real lumen/1 host on 127.0.0.1 for tests: openssl-made RSA identity, the native library, the test pattern. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureNative } from "../../ffi/capture.ts";
import { LumenNative } from "../../ffi/lumen.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { StreamNative } from "../../ffi/stream.ts";
import { silentLogger } from "../../src/log.ts";
import { fingerprintOfPem, LumenHost, type LumenHostOptions } from "../../src/lumen/host.ts";
import { memoryPairingStore } from "../../src/lumen/pairing.ts";

const root = join(import.meta.dir, "..", "..");

export function buildNative(): void {
  const r = Bun.spawnSync(["make", "-C", join(root, "native"), "-s", "-j2"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`make -C native failed: ${r.stderr.toString()}`);
}

let natives: { lumen: LumenNative; stream: StreamNative; capture: CaptureNative } | null = null;
export function loadNatives() {
  if (natives) return natives;
  const path = resolveNativePath({});
  natives = { lumen: new LumenNative(path), stream: new StreamNative(path), capture: new CaptureNative(path) };
  return natives;
}

export function tempDir(prefix = "lumen-"): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

let identity: { keyPem: string; certPem: string } | null = null;
/** A GameStream-like identity (RSA-2048, self-signed) made by the openssl CLI once per process. */
export function testIdentity(fresh = false): { keyPem: string; certPem: string; fingerprint: string } {
  if (!identity || fresh) {
    const dir = mkdtempSync(join(tmpdir(), "lumen-id-"));
    const r = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-days", "2", "-subj", "/CN=NeuronOS GameStream Host"], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl req failed: ${r.stderr.toString()}`);
    const made = { keyPem: readFileSync(join(dir, "k.pem"), "utf8"), certPem: readFileSync(join(dir, "c.pem"), "utf8") };
    rmSync(dir, { recursive: true, force: true });
    if (fresh) return { ...made, fingerprint: fingerprintOfPem(made.certPem) };
    identity = made;
  }
  return { ...identity, fingerprint: fingerprintOfPem(identity.certPem) };
}

export async function startHost(over: Partial<LumenHostOptions> = {}): Promise<LumenHost> {
  const n = loadNatives();
  const id = testIdentity();
  const host = new LumenHost({
    host: "127.0.0.1", port: 0, ...id, natives: n, store: memoryPairingStore(), log: silentLogger,
    source: { fill: (dst, w, h, counter) => n.capture.testpatternFill(dst, w, h, w * 4, counter) },
    maxSessions: 4, pinTimeoutMs: 10_000, ...over,
  });
  await host.start();
  return host;
}

/** Enters `pin` on the host as soon as a client waits for it (what `pair --pin` does). */
export async function enterPinWhenAsked(host: LumenHost, pin: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (host.pending().length) {
      host.submitPin(pin);
      return;
    }
    await Bun.sleep(5);
  }
  throw new Error("no client asked for a PIN in time");
}
