/**
 * The host's GameStream identity: an RSA-2048 key and a self-signed certificate,
 * created on first start in <stateDir>/gamestream/ (directory 0700, files 0600)
 * and kept for good: clients pin this certificate when they pair.
 * The directory is written whole into a temporary name and renamed into place,
 * so a crash never leaves a key without its certificate.
 * Generating the key takes a few hundred milliseconds of CPU: `serve` has it made by a child
 * `openssl genrsa` (createIdentityOffLoop) while the event loop keeps answering; the
 * synchronous path is the fallback.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppError } from "../errors.ts";
import type { GameStreamCrypto, ParsedCert } from "./crypto.ts";

export interface HostIdentity {
  keyPem: string;
  cert: ParsedCert;
  /** Stable host id clients key their host list by: derived from the certificate. */
  uniqueId: string;
}

const DIR = "gamestream";
const KEY = "host.key";
const CERT = "host.crt";
export const HOST_CERT_DAYS = 20 * 365;
export const HOST_COMMON_NAME = "NeuronOS GameStream Host";

function writeIdentity(stateDir: string, make: () => { keyPem: string; certPem: string }): void {
  const dir = join(stateDir, DIR);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(stateDir, `.${DIR}-`));
  try {
    chmodSync(tmp, 0o700);
    const { keyPem, certPem } = make();
    writeFileSync(join(tmp, KEY), keyPem, { mode: 0o600 });
    writeFileSync(join(tmp, CERT), certPem, { mode: 0o600 });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new AppError("GAMESTREAM_IDENTITY", `cannot create the host identity in ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

export const identityExists = (stateDir: string) => existsSync(join(stateDir, DIR));

/** An RSA-2048 private key (PEM) from `openssl genrsa` in a child process, bounded in time. */
export async function opensslRsaKey(openssl: string, timeoutMs = 30_000): Promise<string> {
  const proc = Bun.spawn([openssl, "genrsa", "2048"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0 || !out.includes("PRIVATE KEY-----")) throw new Error(`${openssl} genrsa failed (exit ${code}): ${err.trim().split("\n")[0] ?? ""}`);
    return out;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Creates the identity if the state dir has none, with the key from `makeKey` (awaited off the
 * event loop); the certificate is signed in process (about a millisecond). True when created.
 */
export async function createIdentityOffLoop(stateDir: string, crypto: GameStreamCrypto, makeKey: () => Promise<string>, commonName = HOST_COMMON_NAME): Promise<boolean> {
  if (identityExists(stateDir)) return false;
  const keyPem = await makeKey();
  if (identityExists(stateDir)) return false; // made meanwhile (the synchronous fallback)
  writeIdentity(stateDir, () => crypto.createIdentity(commonName, HOST_CERT_DAYS, keyPem));
  return true;
}

export function loadOrCreateIdentity(stateDir: string, crypto: GameStreamCrypto, commonName = HOST_COMMON_NAME): HostIdentity {
  const dir = join(stateDir, DIR);
  if (!existsSync(dir)) writeIdentity(stateDir, () => crypto.createIdentity(commonName, HOST_CERT_DAYS));
  let keyPem: string;
  let certPem: string;
  try {
    keyPem = readFileSync(join(dir, KEY), "utf8");
    certPem = readFileSync(join(dir, CERT), "utf8");
  } catch (err) {
    throw new AppError("GAMESTREAM_IDENTITY", `host identity in ${dir} is incomplete: ${(err as Error).message}`, { cause: err });
  }
  let cert: ParsedCert;
  try {
    cert = crypto.parseCert(certPem);
  } catch (err) {
    throw new AppError("GAMESTREAM_IDENTITY", `host certificate ${join(dir, CERT)} is not valid: ${(err as Error).message}`, { cause: err });
  }
  return { keyPem, cert, uniqueId: cert.fingerprint.slice(0, 16).toUpperCase() };
}
