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
 * Attempts are keyed by the client's address, one per address: a new getservercert from the
 * same address replaces that address's attempt (a client starting over); one from another
 * address never touches it — it is an attempt of its own, the PIN goes to the attempt the owner
 * names when several wait (`pair pending` shows address and device name), and a wrong choice
 * only fails (the PIN is the one the owner's client shows). At most MAX_CONCURRENT addresses
 * pair at once (more are refused with a message), so a host squatting one slot does not stop
 * the owner from pairing. Attempts are rate-limited per address (getservercert per minute). An
 * attempt that goes out of order, fails, or sits idle past its deadline is dropped, and nothing
 * is stored unless phase 4 succeeds.
 *
 * Every event (started, refused, PIN entered, wrong PIN, expired, failed, paired) goes to
 * `onEvent` with the attempt id and the client's address, never the PIN. A wrong PIN shows in
 * one of two ways: stock Moonlight checks the host's hash after phase 3, finds it wrong and
 * calls /unpair over HTTP (→ abandon(), the attempt at phase "hashed"); a client that goes on
 * to phase 4 fails the host's hash check there.
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
  /** When the client's wait for the PIN ends (the attempt expires). */
  expiresAt: string;
}

/** What happened to a pairing attempt (for the log and the audit table). No PIN ever. */
export type PairingEvent =
  | { type: "started"; attemptId: string; address: string; deviceName: string; createdAt: string; expiresAt: string }
  | { type: "refused"; address: string; reason: "rate-limited" | "busy"; detail: string }
  | { type: "pin-entered"; attemptId: string; address: string; deviceName: string }
  | { type: "wrong-pin"; attemptId: string; address: string; deviceName: string; detail: string }
  | { type: "expired"; attemptId: string; address: string; deviceName: string; phase: string }
  | { type: "failed"; attemptId: string; address: string; deviceName: string; phase: string; reason: string }
  | { type: "paired"; attemptId: string; address: string; deviceName: string; fingerprint: string }
  | { type: "cancelled"; attemptId: string; address: string; deviceName: string; phase: string };

export interface PairingOptions {
  /** How long getservercert waits for the PIN. */
  pinTimeoutMs: number;
  /** How long an attempt may sit between two phases once the PIN is in. */
  idleTimeoutMs: number;
  /** Pairing attempts (getservercert requests) one address may make per minute (default 5). */
  maxAttemptsPerMinute?: number;
  /** Stores the paired client; called only after phase 4 succeeded. */
  store(client: { name: string; cert: ParsedCert }): void;
  onEvent?: (e: PairingEvent) => void;
  now?: () => number;
}

export const PIN_PATTERN = /^\d{4}$/;
const MAX_CERT_HEX = 16 * 1024;
const RATE_WINDOW_MS = 60_000;
/** Addresses pairing at once. */
export const MAX_CONCURRENT = 4;
/** Addresses whose recent attempts are remembered; the oldest are forgotten beyond this. */
const MAX_TRACKED_ADDRESSES = 4096;

export class PairingManager {
  /** By client address. */
  private readonly attempts = new Map<string, Attempt>();
  /** Address → times of its recent getservercert requests (within RATE_WINDOW_MS). */
  private readonly recent = new Map<string, number[]>();
  private readonly now: () => number;
  private readonly maxPerMinute: number;

  constructor(
    private readonly identity: HostIdentity,
    private readonly crypto: GameStreamCrypto,
    private readonly opts: PairingOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.maxPerMinute = opts.maxAttemptsPerMinute ?? 5;
  }

  /** Attempts waiting for the user to type the PIN the client shows. */
  pending(): PendingPairing[] {
    this.expire();
    return [...this.attempts.values()]
      .filter((a) => a.phase === "waiting_pin" && !a.pinEntered)
      .map((a) => this.describe(a));
  }

  private describe(a: Attempt): PendingPairing {
    return { id: a.id, deviceName: a.deviceName, remoteIp: a.remoteIp, createdAt: new Date(a.createdAt).toISOString(), expiresAt: new Date(a.createdAt + this.opts.pinTimeoutMs).toISOString() };
  }

  /**
   * The owner cancels an attempt in progress (waiting for the PIN or later): it ends at once, the
   * client's open request is answered with the failure, nothing is stored.
   */
  cancel(attemptId: string): PendingPairing {
    this.expire();
    const a = [...this.attempts.values()].find((x) => x.id === attemptId);
    if (!a) throw new AppError("PAIRING_NOT_PENDING", `no pairing attempt ${attemptId} is in progress (it ended or never existed)`, { status: 404 });
    const described = this.describe(a);
    this.attempts.delete(a.key);
    a.pinWaiter?.reject(new PairingError(400, "the pairing was cancelled on the host"));
    this.emit({ type: "cancelled", attemptId: a.id, address: a.remoteIp, deviceName: a.deviceName, phase: a.phase });
    return described;
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
    this.emit({ type: "pin-entered", attemptId: a.id, address: a.remoteIp, deviceName: a.deviceName });
    a.pinWaiter?.resolve(pin);
    return this.describe(a);
  }

  /** One /pair request over plain HTTP (phases 1–4). Returns the reply's children or throws PairingError. */
  async handle(params: URLSearchParams, client: { remoteIp: string; signal?: AbortSignal }): Promise<XmlChild[]> {
    this.expire();
    const uniqueId = params.get("uniqueid");
    if (!uniqueId || uniqueId.length > 128) throw new PairingError(400, "missing or invalid uniqueid");
    const key = client.remoteIp;
    const first = params.get("phrase") === "getservercert";
    if (first) this.admit(key);
    // the attempt this request works on (a later request from the address may have replaced it meanwhile)
    const current: { attempt?: Attempt } = { attempt: first ? undefined : this.attempts.get(key) };
    try {
      if (first) return await this.getServerCert(key, params, client, current);
      const attempt = current.attempt;
      if (params.has("clientchallenge")) return this.clientChallenge(this.expect(attempt, "have_key"), params.get("clientchallenge")!);
      if (params.has("serverchallengeresp")) return this.serverChallengeResp(this.expect(attempt, "challenged"), params.get("serverchallengeresp")!);
      if (params.has("clientpairingsecret")) return this.clientPairingSecret(this.expect(attempt, "hashed"), params.get("clientpairingsecret")!);
      throw new PairingError(400, "unknown pairing phase");
    } catch (err) {
      // Any failure ends the attempt: a client must start over from getservercert.
      const e = err instanceof HexError ? new PairingError(400, err.message) : (err as Error);
      const attempt = current.attempt;
      if (attempt && this.attempts.get(key) === attempt) this.drop(attempt, e instanceof PairingError ? e : new PairingError(400, e.message), e.message);
      throw e;
    }
  }

  /**
   * The client at `remoteIp` gave up (it calls /unpair over HTTP after a failed phase). After
   * phase 3 that is how stock Moonlight reports a wrong PIN: it found the host's hash wrong.
   */
  abandon(remoteIp: string): void {
    const a = this.attempts.get(remoteIp);
    if (!a) return;
    this.attempts.delete(a.key);
    a.pinWaiter?.reject(new PairingError(400, "the client gave up"));
    if (a.phase === "hashed") this.emit({ type: "wrong-pin", attemptId: a.id, address: a.remoteIp, deviceName: a.deviceName, detail: "the client found the host's hash wrong after phase 3 and gave up" });
    else this.emit({ type: "failed", attemptId: a.id, address: a.remoteIp, deviceName: a.deviceName, phase: a.phase, reason: "the client gave up (/unpair)" });
  }

  /** Rate limit and one-attempt-at-a-time, before any work on a getservercert. */
  private admit(address: string): void {
    const now = this.now();
    const times = (this.recent.get(address) ?? []).filter((t) => now - t < RATE_WINDOW_MS);
    if (times.length >= this.maxPerMinute) {
      const waitS = Math.ceil((RATE_WINDOW_MS - (now - times[0]!)) / 1000);
      this.recent.set(address, times);
      const detail = `too many pairing attempts from ${address}: at most ${this.maxPerMinute} a minute; try again in ${waitS} s`;
      this.emit({ type: "refused", address, reason: "rate-limited", detail });
      throw new PairingError(429, detail);
    }
    times.push(now);
    this.recent.delete(address); // re-inserted last: the map stays ordered by last use
    this.recent.set(address, times);
    if (this.recent.size > MAX_TRACKED_ADDRESSES) {
      for (const [addr, ts] of this.recent) {
        if (this.recent.size <= MAX_TRACKED_ADDRESSES) break;
        if (ts.every((t) => now - t >= RATE_WINDOW_MS) || this.recent.size > MAX_TRACKED_ADDRESSES) this.recent.delete(addr);
      }
    }
    const others = [...this.attempts.values()].filter((a) => a.key !== address);
    if (others.length >= MAX_CONCURRENT) {
      const detail = `${others.length} other clients are pairing with this host right now; try again when they are done`;
      this.emit({ type: "refused", address, reason: "busy", detail });
      throw new PairingError(503, detail);
    }
  }

  private emit(e: PairingEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      /* a failing listener never breaks pairing */
    }
  }

  private expect(attempt: Attempt | undefined, phase: Phase): Attempt {
    if (!attempt) throw new PairingError(400, "no pairing in progress for this client (phase out of order)");
    if (attempt.phase !== phase) throw new PairingError(400, `pairing phase out of order (expected ${phase}, at ${attempt.phase})`);
    attempt.lastAt = this.now();
    return attempt;
  }

  private async getServerCert(key: string, params: URLSearchParams, client: { remoteIp: string; signal?: AbortSignal }, current: { attempt?: Attempt }): Promise<XmlChild[]> {
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
    if (old) this.drop(old, new PairingError(409, "superseded by a new pairing attempt from the same address"));
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
    current.attempt = attempt;
    const described = this.describe(attempt);
    this.emit({ type: "started", attemptId: attempt.id, address: attempt.remoteIp, deviceName, createdAt: described.createdAt, expiresAt: described.expiresAt });
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
    const base = { attemptId: a.id, address: a.remoteIp, deviceName: a.deviceName };
    // wrong PIN or forged secret: nothing stored
    if (!hashOk) {
      this.emit({ type: "wrong-pin", ...base, detail: "the client's hash does not match (phase 4)" });
      return [["paired", 0]];
    }
    if (!sigOk) {
      this.emit({ type: "failed", ...base, phase: "hashed", reason: "the client's pairing secret signature does not verify with its certificate" });
      return [["paired", 0]];
    }
    this.opts.store({ name: a.deviceName, cert: a.clientCert });
    this.emit({ type: "paired", ...base, fingerprint: a.clientCert.fingerprint });
    return [["paired", 1]];
  }

  /** Ends an attempt; the event says why (an expiry, or a failure with the reason). */
  private drop(a: Attempt, reason: PairingError, detail = reason.message): void {
    if (this.attempts.get(a.key) === a) this.attempts.delete(a.key);
    a.pinWaiter?.reject(reason);
    const base = { attemptId: a.id, address: a.remoteIp, deviceName: a.deviceName, phase: a.phase };
    if (reason.statusCode === 408) this.emit({ type: "expired", ...base });
    else this.emit({ type: "failed", ...base, reason: detail });
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
