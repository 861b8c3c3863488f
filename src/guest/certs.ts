/**
 * Per-VM mutual TLS material for the agent channel, generated with the
 * openssl CLI (config.bin.openssl): a per-VM CA (P-256), a host certificate
 * (clientAuth) kept by the appliance, and a guest certificate (serverAuth)
 * provisioned into the guest with the CA certificate.
 *
 * Layout: <stateDir>/agent-certs/<vm>/{ca,host,guest}.{crt,key}, dir 0700, files 0600.
 * Generation happens in a temporary sibling directory renamed into place, so
 * a failure leaves nothing half-written.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { AppError } from "../errors.ts";
import { execFile, firstLine } from "../exec.ts";

export const VM_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface TlsMaterial {
  /** PEM of the CA that signed the peer's certificate. */
  ca: string;
  cert: string;
  key: string;
}

export interface AgentCertificates {
  dir: string;
  host: TlsMaterial;
  guest: TlsMaterial;
}

export function assertVmName(vm: string): void {
  if (!VM_NAME_RE.test(vm))
    throw new AppError("INVALID_VM_NAME", `invalid VM name ${JSON.stringify(vm.slice(0, 80))}`, { status: 422 });
}

export function certDir(stateDir: string, vm: string): string {
  assertVmName(vm);
  return join(stateDir, "agent-certs", vm);
}

const FILES = ["ca.crt", "host.crt", "host.key", "guest.crt", "guest.key"] as const;

export function loadAgentCertificates(stateDir: string, vm: string): AgentCertificates | null {
  const dir = certDir(stateDir, vm);
  if (!FILES.every((f) => existsSync(join(dir, f)))) return null;
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  const ca = read("ca.crt");
  return {
    dir,
    host: { ca, cert: read("host.crt"), key: read("host.key") },
    guest: { ca, cert: read("guest.crt"), key: read("guest.key") },
  };
}

async function openssl(bin: string, args: string[], cwd: string): Promise<void> {
  const r = await execFile([bin, ...args], { cwd, timeoutMs: 30_000 });
  if (r.spawnError) throw new AppError("OPENSSL_UNAVAILABLE", `cannot run ${bin}: ${r.spawnError}`, { status: 500 });
  if (r.code !== 0)
    throw new AppError("CERT_GENERATION_FAILED", `openssl ${args[0]} failed: ${firstLine(r.stderr) || `exit ${r.code}`}`, {
      status: 500,
    });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** Returns the VM's certificates, generating them on first use (or when `renew`). */
export async function ensureAgentCertificates(
  opts: { stateDir: string; openssl: string; days?: number },
  vm: string,
  renew = false,
): Promise<AgentCertificates> {
  const dir = certDir(opts.stateDir, vm);
  if (!renew) {
    const existing = loadAgentCertificates(opts.stateDir, vm);
    if (existing) return existing;
  }
  const parent = join(opts.stateDir, "agent-certs");
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(parent, `.${vm}.`));
  try {
    chmodSync(tmp, 0o700);
    const days = String(opts.days ?? 3650);
    await openssl(
      opts.openssl,
      ["req", "-x509", ...EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", days, "-subj", `/CN=NeuronOS agent CA ${vm}`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
      tmp,
    );
    for (const [role, eku] of [["host", "clientAuth"], ["guest", "serverAuth"]] as const) {
      writeFileSync(
        join(tmp, `${role}.ext`),
        `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\nsubjectAltName=DNS:${role}.${vm.toLowerCase()}.agent.neuronos\n`,
      );
      await openssl(opts.openssl, ["req", "-new", ...EC, "-keyout", `${role}.key`, "-out", `${role}.csr`, "-subj", `/CN=${role}.${vm}`], tmp);
      await openssl(
        opts.openssl,
        ["x509", "-req", "-in", `${role}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", `0x${randomBytes(16).toString("hex")}`,
          "-days", days, "-extfile", `${role}.ext`, "-out", `${role}.crt`],
        tmp,
      );
      rmSync(join(tmp, `${role}.csr`));
      rmSync(join(tmp, `${role}.ext`));
    }
    for (const f of [...FILES, "ca.key"]) chmodSync(join(tmp, f), 0o600);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const out = loadAgentCertificates(opts.stateDir, vm);
  if (!out) throw new AppError("CERT_GENERATION_FAILED", `certificates for ${vm} missing after generation`, { status: 500 });
  return out;
}
