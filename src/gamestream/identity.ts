/**
 * The host's GameStream identity: an RSA-2048 key and a self-signed certificate,
 * created on first start in <stateDir>/gamestream/ (directory 0700, files 0600)
 * and kept for good: clients pin this certificate when they pair.
 * The directory is written whole into a temporary name and renamed into place,
 * so a crash never leaves a key without its certificate.
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

export function loadOrCreateIdentity(stateDir: string, crypto: GameStreamCrypto, commonName = "NeuronOS GameStream Host"): HostIdentity {
  const dir = join(stateDir, DIR);
  if (!existsSync(dir)) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const tmp = mkdtempSync(join(stateDir, `.${DIR}-`));
    try {
      chmodSync(tmp, 0o700);
      const { keyPem, certPem } = crypto.createIdentity(commonName, HOST_CERT_DAYS);
      writeFileSync(join(tmp, KEY), keyPem, { mode: 0o600 });
      writeFileSync(join(tmp, CERT), certPem, { mode: 0o600 });
      renameSync(tmp, dir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw new AppError("GAMESTREAM_IDENTITY", `cannot create the host identity in ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }
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
