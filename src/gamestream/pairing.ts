/**
 * GameStream PIN pairing (the five phases of the nvhttp /pair endpoint).
 *
 *  1 getservercert        salt, clientcert → (wait for the PIN) key = SHA-256(salt ‖ PIN)[0:16]; reply plaincert
 *  2 clientchallenge      c = ECB⁻¹(key, 16 B); reply ECB(key, SHA-256(c ‖ serverCertSig ‖ serversecret) ‖ serverchallenge)
 *  3 serverchallengeresp  clienthash = ECB⁻¹(key, 32 B); reply serversecret ‖ sign(serverKey, serversecret)
 *  4 clientpairingsecret  clientsecret ‖ sig: SHA-256(serverchallenge ‖ clientCertSig ‖ clientsecret) must equal
 *                         clienthash and sig must verify with the client cert → store the client
 *  5 pairchallenge        over HTTPS with the new certificate (handled by the HTTP layer)
 *
 * Attempts are keyed by the client's uniqueid and address, so concurrent attempts never share
 * state; an attempt that goes out of order, fails, or sits idle past its deadline is dropped,
 * and nothing is stored unless phase 4 succeeds.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "../errors.ts";
import type { GameStreamCrypto, ParsedCert } from "./crypto.ts";
import { concatBytes, decodeHex, encodeHex, equalBytes, HexError } from "./hex.ts";
import type { HostIdentity } from "./identity.ts";
import type { XmlChild } from "./xml.ts";

export class PairingError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

type Phase = "waiting_pin" | "have_key" | "challenged" | "hashed";

interface Attempt {
  id: string;
  key: string;
  deviceName: string;
  remoteIp: string;
  clientCert: ParsedCert;
  salt: Uint8Array;
  createdAt: number;
  lastAt: number;
  phase: Phase;
  /** The PIN was entered; the phase-1 reply is on its way. */
  pinEntered?: boolean;
  aesKey?: Uint8Array;
  serverSecret?: Uint8Array;
  serverChallenge?: Uint8Array;
  clientHash?: Uint8Array;
  pinWaiter?: { resolve(pin: string): void; reject(err: Error): void };
}

export interface PendingPairing {
  id: string;
  deviceName: string;
  remoteIp: string;
  createdAt: string;
}

export interface PairingOptions {
  /** How long getservercert waits for the PIN. */
  pinTimeoutMs: number;
  /** How long an attempt may sit between two phases once the PIN is in. */
  idleTimeoutMs: number;
  /** Stores the paired client; called only after phase 4 succeeded. */
  store(client: { name: string; cert: ParsedCert }): void;
  now?: () => number;
}

export const PIN_PATTERN = /^\d{4}$/;
const MAX_CERT_HEX = 16 * 1024;

export class PairingManager {
  private readonly attempts = new Map<string, Attempt>();
  private readonly now: () => number;

  constructor(
    private readonly identity: HostIdentity,
    private readonly crypto: GameStreamCrypto,
    private readonly opts: PairingOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Attempts waiting for the user to type the PIN the client shows. */
  pending(): PendingPairing[] {
    this.expire();
    return [...this.attempts.values()]
      .filter((a) => a.phase === "waiting_pin" && !a.pinEntered)
      .map((a) => ({ id: a.id, deviceName: a.deviceName, remoteIp: a.remoteIp, createdAt: new Date(a.createdAt).toISOString() }));
  }

  /** The PIN the user entered on the host, for the one waiting attempt (or the one named). */
  submitPin(pin: string, attemptId?: string): PendingPairing {
    if (!PIN_PATTERN.test(pin)) throw new AppError("PAIRING_PIN_INVALID", "the PIN must be 4 digits", { status: 422 });
    this.expire();
    const waiting = [...this.attempts.values()].filter((a) => a.phase === "waiting_pin" && !a.pinEntered && (!attemptId || a.id === attemptId));
    if (waiting.length === 0)
      throw new AppError("PAIRING_NOT_PENDING", attemptId ? `no pairing attempt ${attemptId} is waiting for a PIN` : "no client is waiting for a PIN", { status: 404 });
    if (waiting.length > 1)
      throw new AppError("PAIRING_AMBIGUOUS", `${waiting.length} clients are waiting for a PIN; name the attempt id`, { status: 409 });
    const a = waiting[0]!;
    a.pinEntered = true;
    a.pinWaiter?.resolve(pin);
    return { id: a.id, deviceName: a.deviceName, remoteIp: a.remoteIp, createdAt: new Date(a.createdAt).toISOString() };
  }

  /** One /pair request over plain HTTP (phases 1–4). Returns the reply's children or throws PairingError. */
  async handle(params: URLSearchParams, client: { remoteIp: string; signal?: AbortSignal }): Promise<XmlChild[]> {
    this.expire();
    const uniqueId = params.get("uniqueid");
    if (!uniqueId || uniqueId.length > 128) throw new PairingError(400, "missing or invalid uniqueid");
    const key = `${uniqueId}\u0000${client.remoteIp}`;
    try {
      if (params.get("phrase") === "getservercert") return await this.getServerCert(key, params, client);
      const attempt = this.attempts.get(key);
      if (params.has("clientchallenge")) return this.clientChallenge(this.expect(attempt, "have_key"), params.get("clientchallenge")!);
      if (params.has("serverchallengeresp")) return this.serverChallengeResp(this.expect(attempt, "challenged"), params.get("serverchallengeresp")!);
      if (params.has("clientpairingsecret")) return this.clientPairingSecret(this.expect(attempt, "hashed"), params.get("clientpairingsecret")!);
      throw new PairingError(400, "unknown pairing phase");
    } catch (err) {
      // Any failure ends the attempt: a client must start over from getservercert.
      const attempt = this.attempts.get(key);
      if (attempt) this.drop(attempt, err as Error);
      if (err instanceof HexError) throw new PairingError(400, err.message);
      throw err;
    }
  }

  private expect(attempt: Attempt | undefined, phase: Phase): Attempt {
    if (!attempt) throw new PairingError(400, "no pairing in progress for this client (phase out of order)");
    if (attempt.phase !== phase) throw new PairingError(400, `pairing phase out of order (expected ${phase}, at ${attempt.phase})`);
    attempt.lastAt = this.now();
    return attempt;
  }

  private async getServerCert(key: string, params: URLSearchParams, client: { remoteIp: string; signal?: AbortSignal }): Promise<XmlChild[]> {
    const salt = decodeHex(params.get("salt") ?? "", { bytes: 16, name: "salt" });
    const certHex = params.get("clientcert") ?? "";
    if (certHex.length === 0 || certHex.length > MAX_CERT_HEX) throw new PairingError(400, "missing or oversized clientcert");
    const certPem = new TextDecoder().decode(decodeHex(certHex, { name: "clientcert" }));
    let clientCert: ParsedCert;
    try {
      clientCert = this.crypto.parseCert(certPem);
    } catch (err) {
      throw new PairingError(400, `clientcert is not a certificate: ${(err as Error).message}`);
    }
    const old = this.attempts.get(key);
    if (old) this.drop(old, new Error("superseded by a new pairing attempt"));
    const deviceName = (params.get("devicename") ?? "").slice(0, 64) || "Moonlight client";
    const attempt: Attempt = {
      id: randomUUID(),
      key,
      deviceName,
      remoteIp: client.remoteIp,
      clientCert,
      salt,
      createdAt: this.now(),
      lastAt: this.now(),
      phase: "waiting_pin",
    };
    this.attempts.set(key, attempt);
    const pin = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new PairingError(408, "no PIN was entered in time")), this.opts.pinTimeoutMs);
      const onAbort = () => reject(new PairingError(499, "client went away while waiting for the PIN"));
      client.signal?.addEventListener("abort", onAbort, { once: true });
      attempt.pinWaiter = {
        resolve: (p) => {
          clearTimeout(timer);
          client.signal?.removeEventListener("abort", onAbort);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          client.signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
    });
    attempt.pinWaiter = undefined;
    attempt.aesKey = this.crypto.sha256(concatBytes(salt, new TextEncoder().encode(pin))).slice(0, 16);
    attempt.phase = "have_key";
    attempt.lastAt = this.now();
    return [
      ["paired", 1],
      ["plaincert", encodeHex(new TextEncoder().encode(this.identity.cert.pem))],
    ];
  }

  private clientChallenge(a: Attempt, hex: string): XmlChild[] {
    const challenge = this.crypto.aesEcbDecrypt(a.aesKey!, decodeHex(hex, { bytes: 16, name: "clientchallenge" }));
    a.serverSecret = this.crypto.randomBytes(16);
    a.serverChallenge = this.crypto.randomBytes(16);
    const hash = this.crypto.sha256(concatBytes(challenge, this.identity.cert.signature, a.serverSecret));
    const response = this.crypto.aesEcbEncrypt(a.aesKey!, concatBytes(hash, a.serverChallenge));
    a.phase = "challenged";
    return [
      ["paired", 1],
      ["challengeresponse", encodeHex(response)],
    ];
  }

  private serverChallengeResp(a: Attempt, hex: string): XmlChild[] {
    a.clientHash = this.crypto.aesEcbDecrypt(a.aesKey!, decodeHex(hex, { bytes: 32, name: "serverchallengeresp" }));
    const signature = this.crypto.sign(this.identity.keyPem, a.serverSecret!);
    a.phase = "hashed";
    return [
      ["paired", 1],
      ["pairingsecret", encodeHex(concatBytes(a.serverSecret!, signature))],
    ];
  }

  private clientPairingSecret(a: Attempt, hex: string): XmlChild[] {
    const bytes = decodeHex(hex, { maxBytes: 16 + 1024, name: "clientpairingsecret" });
    if (bytes.length <= 16) throw new PairingError(400, "clientpairingsecret: too short");
    const clientSecret = bytes.subarray(0, 16);
    const signature = bytes.subarray(16);
    const expected = this.crypto.sha256(concatBytes(a.serverChallenge!, a.clientCert.signature, clientSecret));
    const hashOk = equalBytes(expected, a.clientHash!);
    const sigOk = hashOk && this.crypto.verifyWithCert(a.clientCert.pem, clientSecret, signature);
    this.attempts.delete(a.key);
    if (!hashOk || !sigOk) return [["paired", 0]]; // wrong PIN or forged secret: nothing stored
    this.opts.store({ name: a.deviceName, cert: a.clientCert });
    return [["paired", 1]];
  }

  private drop(a: Attempt, reason: Error): void {
    this.attempts.delete(a.key);
    a.pinWaiter?.reject(reason instanceof PairingError ? reason : new PairingError(400, reason.message));
  }

  private expire(): void {
    const now = this.now();
    for (const a of this.attempts.values()) {
      const limit = a.phase === "waiting_pin" ? this.opts.pinTimeoutMs : this.opts.idleTimeoutMs;
      if (now - a.lastAt > limit) this.drop(a, new PairingError(408, "pairing attempt expired"));
    }
  }

  /** Ends every attempt (service shutdown). */
  close(): void {
    for (const a of [...this.attempts.values()]) this.drop(a, new PairingError(503, "host is shutting down"));
  }
}
