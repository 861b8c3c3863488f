/**
 * The unattended-install ISO: autounattend.xml at its root (Windows Setup reads it from any
 * removable drive), and under neuron/ the first-logon script, the guest agent with its
 * installer and this VM's certificates, and the Looking Glass host installer when given.
 * Packed by xorriso (ISO 9660 + Joliet, volume id NEURON_SETUP) into <stateDir>/vms/<vm>.setup.iso.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import installAgentPs1 from "../../build/guest-agent/install-windows.ps1" with { type: "text" };
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { execFile, firstLine } from "../exec.ts";
import { ensureAgentCertificates } from "../guest/certs.ts";
import { hostWindowsLocale } from "./host-locale.ts";
import type { AnswerMediaInput } from "./steps.ts";
import { computerName, setupCmd, SETUP_DIR, unattendXml } from "./unattend.ts";

export const ANSWER_VOLUME_ID = "NEURON_SETUP";

export interface AnswerMediaSettings {
  stateDir: string;
  /** Root whose /etc holds the host's locale, keyboard and time zone. */
  targetRoot: string;
  xorriso: string;
  openssl: string;
  guestAgentExe: string;
}

/** Writes `files` (ISO path → content or source file) into an ISO at `out`, atomically. */
export async function packIso(xorriso: string, out: string, volumeId: string, files: Record<string, { text: string } | { from: string }>): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  const stage = mkdtempSync(join(dirname(out), ".iso-stage-"));
  try {
    for (const [rel, src] of Object.entries(files)) {
      const dest = join(stage, rel);
      mkdirSync(dirname(dest), { recursive: true });
      if ("text" in src) writeFileSync(dest, src.text);
      else copyFileSync(src.from, dest);
    }
    const tmp = `${out}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    const r = await execFile([xorriso, "-as", "mkisofs", "-quiet", "-J", "-joliet-long", "-r", "-V", volumeId, "-o", tmp, stage], { timeoutMs: 120_000 });
    if (r.spawnError) throw new AppError("ANSWER_MEDIA_UNAVAILABLE", `cannot run ${xorriso}: ${r.spawnError}`, { status: 500 });
    if (r.code !== 0) {
      rmSync(tmp, { force: true });
      throw new AppError("ISO_BUILD_FAILED", `xorriso failed: ${firstLine(r.stderr) || `exit ${r.code}`}`, { status: 500 });
    }
    renameSync(tmp, out);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export function answerIsoPath(stateDir: string, vm: string): string {
  return join(stateDir, "vms", `${vm}.setup.iso`);
}

export function answerMedia(settings: AnswerMediaSettings) {
  return async (input: AnswerMediaInput): Promise<{ path: string; files: string[] }> => {
    const locale = hostWindowsLocale(settings.targetRoot);
    const files: Record<string, { text: string } | { from: string }> = {
      "autounattend.xml": { text: unattendXml({ template: input.template, computerName: computerName(input.vmName), user: input.user, password: input.password, locale }) },
      [`${SETUP_DIR}/setup.cmd`]: { text: setupCmd() },
      [`${SETUP_DIR}/agent/install-windows.ps1`]: { text: installAgentPs1 },
    };
    const certs = await ensureAgentCertificates({ stateDir: settings.stateDir, openssl: settings.openssl }, input.vmName);
    files[`${SETUP_DIR}/agent/ca.crt`] = { text: certs.guest.ca };
    files[`${SETUP_DIR}/agent/guest.crt`] = { text: certs.guest.cert };
    files[`${SETUP_DIR}/agent/guest.key`] = { text: certs.guest.key };
    if (existsSync(settings.guestAgentExe)) files[`${SETUP_DIR}/agent/neuron-agent.exe`] = { from: settings.guestAgentExe };
    if (input.lookingGlassInstaller) files[`${SETUP_DIR}/looking-glass-host-setup.exe`] = { from: input.lookingGlassInstaller };
    if (input.ivshmemDriver)
      for (const name of readdirSync(input.ivshmemDriver).filter((n) => /^[A-Za-z0-9._-]+$/.test(n)).slice(0, 64))
        if (statSync(join(input.ivshmemDriver, name)).isFile()) files[`${SETUP_DIR}/ivshmem/${name}`] = { from: join(input.ivshmemDriver, name) };
    const path = answerIsoPath(settings.stateDir, input.vmName);
    await packIso(settings.xorriso, path, ANSWER_VOLUME_ID, files);
    return { path, files: Object.keys(files).sort() };
  };
}

export function answerMediaBuilder(config: Config) {
  return answerMedia({
    stateDir: config.stateDir,
    targetRoot: config.targetRoot,
    xorriso: config.bin.xorriso,
    openssl: config.bin.openssl,
    guestAgentExe: config.setup.guestAgentExe,
  });
}
