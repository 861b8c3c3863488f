/**
 * TLS for the management API's TCP listener. Loopback needs none; any other
 * bind address refuses to start without it: a configured certificate
 * (`apiTls.cert` + `apiTls.key`) or the appliance's own (`apiTls.selfSigned`),
 * made once with openssl in <stateDir>/api-tls/ (0700, key 0600) with the
 * appliance's names as subjectAltNames, so a browser can be told to trust it.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";

export interface ApiTls {
  cert: string;
  key: string;
  source: "configured" | "self-signed";
  certPath: string;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function readPem(path: string, setting: string): string {
  try {
    const text = readFileSync(path, "utf8");
    if (!text.includes("-----BEGIN ")) throw new Error("not a PEM file");
    return text;
  } catch (err) {
    throw new AppError("API_TLS_INVALID", `${setting} ${path}: ${(err as Error).message}`, { status: 500, cause: err });
  }
}

function subjectAltNames(config: Config): string {
  const names = new Set(["DNS:localhost", "IP:127.0.0.1", "IP:::1"]);
  const machine = (config.hostname ?? hostname()).toLowerCase();
  if (machine) {
    names.add(`DNS:${machine}`);
    names.add(`DNS:${machine.split(".")[0]}.local`);
  }
  for (const n of [config.host, ...config.apiHostnames]) {
    const bare = n.replace(/^\[|\]$/g, "");
    if (bare === "0.0.0.0" || bare === "::") continue;
    names.add(/^\d{1,3}(\.\d{1,3}){3}$/.test(bare) || bare.includes(":") ? `IP:${bare}` : `DNS:${bare}`);
  }
  return [...names].join(",");
}

function createSelfSigned(config: Config, dir: string): void {
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { mode: 0o700 });
  try {
    const r = Bun.spawnSync(
      [
        config.bin.openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
        "-subj", "/CN=NeuronOS appliance", "-addext", `subjectAltName=${subjectAltNames(config)}`,
        "-keyout", join(tmp, "key.pem"), "-out", join(tmp, "cert.pem"),
      ],
      { stdout: "ignore", stderr: "pipe", timeout: 30_000 },
    );
    if (r.exitCode !== 0) throw new Error(r.stderr.toString().trim().split("\n").pop() || `openssl exited ${r.exitCode}`);
    chmodSync(join(tmp, "key.pem"), 0o600);
    chmodSync(join(tmp, "cert.pem"), 0o644);
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new AppError("API_TLS_INVALID", `cannot create the appliance's API certificate in ${dir}: ${(err as Error).message}`, { status: 500, cause: err });
  }
}

/** The TLS the TCP listener must use, or null for loopback without TLS configured. Throws when a wider bind has none. */
export function apiTls(config: Config): ApiTls | null {
  const t = config.apiTls;
  if (t.cert && t.key) return { cert: readPem(t.cert, "apiTls.cert"), key: readPem(t.key, "apiTls.key"), source: "configured", certPath: t.cert };
  if (t.selfSigned) {
    const dir = join(config.stateDir, "api-tls");
    if (!existsSync(join(dir, "cert.pem"))) createSelfSigned(config, dir);
    const certPath = join(dir, "cert.pem");
    return { cert: readPem(certPath, "self-signed certificate"), key: readPem(join(dir, "key.pem"), "self-signed key"), source: "self-signed", certPath };
  }
  if (isLoopbackHost(config.host)) return null;
  throw new AppError(
    "API_TLS_REQUIRED",
    `the management API would listen on ${config.host}, beyond loopback, without TLS: set apiTls.cert and apiTls.key (PEM files) or apiTls.selfSigned: true in the config (env NEURON_API_TLS_SELF_SIGNED=true), or bind to 127.0.0.1`,
    { status: 500 },
  );
}
