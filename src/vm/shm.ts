/**
 * Looking Glass shared memory (IVSHMEM): the size rule, the backing file the
 * VM and the client share, and the checks `doctor` reports.
 *
 * Size rule: width × height × 4 bytes × 2 frames (× 2 again for HDR), in MiB,
 * plus 10 MiB for the LGMP header, cursor and queues, rounded up to the next
 * power of two (IVSHMEM BARs are powers of two). 1080p → 32, 1440p → 64, 4K → 128.
 */
import { closeSync, chmodSync, chownSync, existsSync, fstatSync, ftruncateSync, openSync, statSync, constants } from "node:fs";
import { join } from "node:path";
import { AppError } from "../errors.ts";
import type { Resolution } from "./model.ts";

const MiB = 1024 * 1024;

export function ivshmemSizeMiB(resolution: Resolution, hdr: boolean): number {
  const bytes = resolution.width * resolution.height * 4 * 2 * (hdr ? 2 : 1);
  const need = Math.ceil(bytes / MiB) + 10;
  let size = 1;
  while (size < need) size *= 2;
  return size;
}

/** The shared-memory object name of a VM: one per VM so two VMs never share frames. */
export function shmName(vmName: string): string {
  return `looking-glass-${vmName}`;
}

export function shmPath(shmDir: string, vmName: string): string {
  return join(shmDir, shmName(vmName));
}

export interface ShmOwner {
  /** The desktop user that runs looking-glass-client. */
  uid: number;
  /** Group kvm, so QEMU (in group kvm) can map it too. */
  gid: number;
}

export interface ShmState {
  path: string;
  sizeMiB: number;
  mode: number;
  uid: number;
  gid: number;
}

/**
 * Creates (or grows) the backing file with owner user:kvm, mode 0660.
 * Never shrinks an existing file: a running guest may have it mapped.
 */
export function provisionShm(path: string, sizeMiB: number, owner: ShmOwner): ShmState {
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > 4096)
    throw new AppError("SHM_SIZE_INVALID", `shared memory size ${sizeMiB} MiB is out of range (1..4096)`, { status: 422 });
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o660);
  } catch (err) {
    throw new AppError("SHM_PROVISION_FAILED", `cannot create ${path}: ${(err as Error).message}`, { status: 500, cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new AppError("SHM_PROVISION_FAILED", `${path} exists and is not a regular file`, { status: 409 });
    if (st.size < sizeMiB * MiB) ftruncateSync(fd, sizeMiB * MiB);
  } finally {
    closeSync(fd);
  }
  try {
    chownSync(path, owner.uid, owner.gid);
    chmodSync(path, 0o660);
  } catch (err) {
    throw new AppError("SHM_PROVISION_FAILED", `cannot set owner/mode of ${path}: ${(err as Error).message}`, { status: 500, cause: err });
  }
  return readShm(path)!;
}

export function readShm(path: string): ShmState | null {
  if (!existsSync(path)) return null;
  const st = statSync(path);
  return { path, sizeMiB: Math.floor(st.size / MiB), mode: st.mode & 0o777, uid: st.uid, gid: st.gid };
}

/** What is wrong with the backing file for a VM showing `resolution`; empty when all is well. */
export function shmProblems(path: string, resolution: Resolution, hdr: boolean, owner: ShmOwner): string[] {
  const need = ivshmemSizeMiB(resolution, hdr);
  const st = readShm(path);
  if (!st) return [`${path} does not exist (create it before starting the VM, ${need} MiB)`];
  const out: string[] = [];
  if (st.sizeMiB < need)
    out.push(`${path} is ${st.sizeMiB} MiB, too small for ${resolution.width}x${resolution.height}${hdr ? " HDR" : ""} (needs ${need} MiB)`);
  if (st.uid !== owner.uid || st.gid !== owner.gid)
    out.push(`${path} is owned by ${st.uid}:${st.gid}, expected ${owner.uid}:${owner.gid} (desktop user, group kvm)`);
  if (st.mode !== 0o660) out.push(`${path} has mode ${st.mode.toString(8).padStart(4, "0")}, expected 0660`);
  return out;
}

/** systemd-tmpfiles line that recreates the file at boot (owner user, group kvm, 0660). */
export function tmpfilesLine(path: string, user: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new AppError("INVALID_INPUT", `bad user name ${JSON.stringify(user)}`, { status: 422 });
  return `f ${path} 0660 ${user} kvm -\n`;
}

/**
 * looking-glass-client configuration for one VM (INI). `spiceSocket`: the VM's SPICE unix
 * socket — Looking Glass sends keyboard and mouse through SPICE, and takes `spice:host` as a
 * socket path when `spice:port` is 0; null (a VM without SPICE) turns its SPICE client off, so
 * it never tries the TCP default (127.0.0.1:5900, whatever listens there).
 */
export function lookingGlassClientIni(vmName: string, path: string, spiceSocket: string | null = null): string {
  for (const v of [path, spiceSocket ?? ""])
    if (/[\0\n\r]/.test(v)) throw new AppError("INVALID_INPUT", `looking-glass-client setting ${JSON.stringify(v.slice(0, 120))} holds a control character`, { status: 422 });
  const spice = spiceSocket === null ? ["[spice]", "enable=no"] : ["[spice]", `host=${spiceSocket}`, "port=0"];
  return [`; looking-glass-client settings for VM ${vmName}`, "[app]", `shmFile=${path}`, "", "[win]", `title=${vmName}`, "", "[input]", "escapeKey=KEY_RIGHTCTRL", "", ...spice, ""].join("\n");
}
