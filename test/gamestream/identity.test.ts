/** The host identity made off the event loop: the key from a child `openssl genrsa`, signed natively. */
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { createIdentityOffLoop, loadOrCreateIdentity, opensslRsaKey } from "../../src/gamestream/identity.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { tempDir } from "../helpers/env.ts";

const native = NativeCrypto.load();
const crypto = gameStreamCrypto(native);
afterAll(() => native.close());

describe("host identity off the event loop", () => {
  test("openssl makes the key while the loop runs; the certificate pins it; made once", async () => {
    const dir = tempDir("neuron-id-");
    try {
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 1);
      const created = await createIdentityOffLoop(dir.path, crypto, () => opensslRsaKey("openssl"));
      clearInterval(ticker);
      expect(created).toBe(true);
      expect(ticks).toBeGreaterThan(0); // the event loop kept running meanwhile
      const gs = join(dir.path, "gamestream");
      expect(statSync(gs).mode & 0o777).toBe(0o700);
      for (const f of ["host.key", "host.crt"]) expect(statSync(join(gs, f)).mode & 0o777).toBe(0o600);
      const id = loadOrCreateIdentity(dir.path, crypto);
      const cert = new X509Certificate(id.cert.pem);
      expect(cert.subject).toContain("NeuronOS GameStream Host");
      expect(cert.checkPrivateKey(createPrivateKey(id.keyPem))).toBe(true);
      expect((createPrivateKey(id.keyPem).asymmetricKeyDetails as { modulusLength: number }).modulusLength).toBe(2048);
      expect(await createIdentityOffLoop(dir.path, crypto, () => Promise.reject(new Error("not called")))).toBe(false);
      expect(loadOrCreateIdentity(dir.path, crypto).uniqueId).toBe(id.uniqueId);
      expect(readdirSync(dir.path)).toEqual(["gamestream"]);
    } finally {
      dir.cleanup();
    }
  });

  test("a failing openssl is a clear error and leaves nothing behind", async () => {
    const dir = tempDir("neuron-id-");
    try {
      await expect(opensslRsaKey("/bin/false")).rejects.toThrow("/bin/false genrsa failed (exit 1)");
      await expect(createIdentityOffLoop(dir.path, crypto, () => opensslRsaKey("/bin/false"))).rejects.toThrow("genrsa failed");
      await expect(createIdentityOffLoop(dir.path, crypto, async () => "not a key")).rejects.toThrow("cannot create the host identity");
      expect(existsSync(join(dir.path, "gamestream"))).toBe(false);
      expect(readdirSync(dir.path)).toEqual([]);
    } finally {
      dir.cleanup();
    }
  });
});
