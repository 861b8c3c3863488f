/**
 * A GameStream client written from the protocol notes, for tests: its own
 * RSA key and serial-0 certificate without extensions (made with the openssl
 * CLI, as moonlight-embedded makes them), the five pairing phases with
 * node:crypto, then HTTPS requests with its certificate, pinning the host's.
 */
import { createCipheriv, createDecipheriv, createHash, createPublicKey, createSign, createVerify, randomBytes, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect } from "node:tls";
import { join } from "node:path";
import { rawGet } from "./raw-http.ts";

export interface ClientIdentity {
  keyPem: string;
  certPem: string;
}

/** RSA-2048 key and a self-signed SHA-256 certificate with serial 0 and no extensions. */
export function makeClientIdentity(dir: string, cn = "NVIDIA GameStream Client"): ClientIdentity {
  const key = join(dir, "client.key");
  const cert = join(dir, "client.crt");
  const cfg = join(dir, "openssl.cnf");
  Bun.write(cfg, "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=" + cn + "\n");
  const r = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "7300", "-sha256", "-set_serial", "0", "-config", cfg],
    { stderr: "pipe" },
  );
  if (r.exitCode !== 0) throw new Error(`openssl req failed: ${r.stderr.toString()}`);
  return { keyPem: readFileSync(key, "utf8"), certPem: readFileSync(cert, "utf8") };
}

export function parseXml(body: string): { status: number; message: string | null; fields: Record<string, string>; apps: Record<string, string>[] } {
  const root = body.match(/<root status_code="(-?\d+)"(?: status_message="([^"]*)")?>/);
  if (!root) throw new Error(`not a GameStream reply: ${body.slice(0, 200)}`);
  const fields: Record<string, string> = {};
  for (const m of body.matchAll(/<([A-Za-z0-9_]+)>([^<]*)<\/\1>/g)) fields[m[1]!] = m[2]!;
  const apps = [...body.matchAll(/<App>(.*?)<\/App>/g)].map((a) => Object.fromEntries([...a[1]!.matchAll(/<([A-Za-z0-9_]+)>([^<]*)<\/\1>/g)].map((m) => [m[1]!, m[2]!])));
  return { status: Number(root[1]), message: root[2] ?? null, fields, apps };
}

/** The raw signatureValue of a certificate: the last BIT STRING of the outer SEQUENCE. */
export function certSignature(pem: string): Buffer {
  const der = new X509Certificate(pem).raw;
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  let i = 0;
  const readLen = (): number => {
    let len = der[i++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let k = 0; k < n; k++) len = (len << 8) | der[i++]!;
    }
    return len;
  };
  i++; // outer SEQUENCE tag
  readLen();
  for (let field = 0; field < 2; field++) {
    i++;
    const len = readLen();
    i += len;
  }
  if (der[i++] !== 0x03) throw new Error("signatureValue is not a BIT STRING");
  const len = readLen();
  return der.subarray(i + 1, i + len); // skip the unused-bits byte
}

const ecb = (encrypt: boolean, key: Buffer, data: Buffer) => {
  const c = encrypt ? createCipheriv("aes-128-ecb", key, null) : createDecipheriv("aes-128-ecb", key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
};

export class GameStreamTestClient {
  serverCertPem: string | null = null;
  /** Source address of the plain-HTTP requests (another 127.0.0.x: another client address). */
  localAddress: string | null = null;

  constructor(
    readonly host: string,
    readonly httpPort: number,
    readonly httpsPort: number,
    readonly id: ClientIdentity,
    readonly uniqueId = "0123456789ABCDEF",
    readonly deviceName = "roth",
  ) {}

  private q(params: Record<string, string>) {
    return new URLSearchParams({ uniqueid: this.uniqueId, uuid: crypto.randomUUID().replace(/-/g, ""), ...params }).toString();
  }

  async http(path: string, params: Record<string, string> = {}, signal?: AbortSignal) {
    if (this.localAddress) {
      const r = await rawGet(this.httpPort, `${path}?${this.q(params)}`, `${this.host}:${this.httpPort}`, [], { localAddress: this.localAddress, timeoutMs: 30_000 });
      return parseXml(r.body);
    }
    const res = await fetch(`http://${this.host}:${this.httpPort}${path}?${this.q(params)}`, { signal });
    return parseXml(await res.text());
  }

  /** GET over TLS with the client certificate; checks the host presents the pinned certificate. */
  https(path: string, params: Record<string, string> = {}, identity: ClientIdentity | null = this.id): Promise<{ body: Buffer; contentType: string; peerCertPem: string }> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.httpsPort, rejectUnauthorized: false, ...(identity ? { key: identity.keyPem, cert: identity.certPem } : {}) }, () => {
        socket.write(`GET ${path}?${this.q(params)} HTTP/1.1\r\nHost: ${this.host}\r\nConnection: close\r\n\r\n`);
      });
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("error", reject);
      socket.on("end", () => {
        const raw = Buffer.concat(chunks);
        const sep = raw.indexOf("\r\n\r\n");
        const head = raw.subarray(0, sep).toString();
        const peer = socket.getPeerCertificate(true);
        const peerCertPem = `-----BEGIN CERTIFICATE-----\n${peer.raw.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`;
        resolve({ body: raw.subarray(sep + 4), contentType: head.match(/content-type: ([^\r\n]+)/i)?.[1] ?? "", peerCertPem });
      });
    });
  }

  async httpsXml(path: string, params: Record<string, string> = {}, identity: ClientIdentity | null = this.id) {
    const r = await this.https(path, params, identity);
    if (this.serverCertPem && new X509Certificate(r.peerCertPem).fingerprint256 !== new X509Certificate(this.serverCertPem).fingerprint256)
      throw new Error("host presented a certificate other than the pinned one");
    return parseXml(r.body.toString());
  }

  /**
   * The whole pairing as Moonlight does it. `enterPin` is called once the host holds phase 1
   * open (the user types the PIN on the host). Returns the outcome of each phase.
   */
  async pair(pin: string, enterPin: () => Promise<void>, opts: { tamperClientHash?: boolean; tamperSignature?: boolean; /** as stock Moonlight: stop after phase 3 when the host's hash is wrong, and call /unpair */ checkHostHash?: boolean } = {}) {
    const salt = randomBytes(16);
    const phase1 = this.http("/pair", { devicename: this.deviceName, updateState: "1", phrase: "getservercert", salt: salt.toString("hex"), clientcert: Buffer.from(this.id.certPem).toString("hex") });
    await enterPin();
    const p1 = await phase1;
    if (p1.fields.paired !== "1") return { ok: false, phase: 1, reply: p1 };
    this.serverCertPem = Buffer.from(p1.fields.plaincert!, "hex").toString();
    const key = createHash("sha256").update(Buffer.concat([salt, Buffer.from(pin)])).digest().subarray(0, 16);

    const clientChallenge = randomBytes(16);
    const p2 = await this.http("/pair", { clientchallenge: ecb(true, key, clientChallenge).toString("hex") });
    if (p2.fields.paired !== "1") return { ok: false, phase: 2, reply: p2 };
    const resp = ecb(false, key, Buffer.from(p2.fields.challengeresponse!, "hex"));
    const serverResponseHash = resp.subarray(0, 32);
    const serverChallenge = resp.subarray(32, 48);

    const clientSecret = randomBytes(16);
    let clientHash = createHash("sha256").update(Buffer.concat([serverChallenge, certSignature(this.id.certPem), clientSecret])).digest();
    if (opts.tamperClientHash) clientHash = Buffer.from(clientHash.map((b) => b ^ 0xff));
    const p3 = await this.http("/pair", { serverchallengeresp: ecb(true, key, clientHash).toString("hex") });
    if (p3.fields.paired !== "1") return { ok: false, phase: 3, reply: p3 };
    const pairingSecret = Buffer.from(p3.fields.pairingsecret!, "hex");
    const serverSecret = pairingSecret.subarray(0, 16);
    const serverSig = pairingSecret.subarray(16);
    // What a client checks: the host's signature over its secret, and the hash it sent in phase 2.
    const hostSigOk = createVerify("sha256").update(serverSecret).verify(createPublicKey(this.serverCertPem), serverSig);
    const expectedHash = createHash("sha256").update(Buffer.concat([clientChallenge, certSignature(this.serverCertPem), serverSecret])).digest();
    const hostHashOk = expectedHash.equals(serverResponseHash);
    if (opts.checkHostHash && !hostHashOk) {
      await this.http("/unpair");
      return { ok: false, phase: 3, reply: p3, hostSigOk, hostHashOk };
    }

    let sig = createSign("sha256").update(clientSecret).sign(this.id.keyPem);
    if (opts.tamperSignature) sig = Buffer.from(sig.map((b, i) => (i === 0 ? b ^ 1 : b)));
    const p4 = await this.http("/pair", { clientpairingsecret: Buffer.concat([clientSecret, sig]).toString("hex") });
    if (p4.fields.paired !== "1") return { ok: false, phase: 4, reply: p4, hostSigOk, hostHashOk };
    const p5 = await this.httpsXml("/pair", { devicename: this.deviceName, updateState: "1", phrase: "pairchallenge" });
    return { ok: p5.fields.paired === "1", phase: 5, reply: p5, hostSigOk, hostHashOk };
  }
}
