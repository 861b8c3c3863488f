/**
 * The QMP monitor socket the appliance adds to every VM it defines.
 *
 * libvirt keeps its own QMP monitor to itself; the appliance gets a second one
 * through `<qemu:commandline>` (`-qmp unix:<qmpDir>/<vm>.qmp,server=on,wait=off`)
 * and holds one persistent connection to it per stream session. Measured on one
 * libvirt domain (`npm run bench:qmp-path`, 2 loaded cores): one awaited
 * `input-send-event` costs ~0.9–1.8 ms p50 on this socket, ~3–7 ms through
 * libvirt's QMP passthrough on a held connection (one more RPC hop through
 * libvirtd), ~33–39 ms with a `virsh qemu-monitor-command` process per event.
 *
 * QEMU creates the socket as the user libvirt runs it as, so the directory
 * belongs to that user (found as the owner of libvirt's QEMU state directory),
 * mode 0750: QEMU can create it, the appliance (root) can connect, nobody else
 * can reach the monitor.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { AppError, invalid } from "../errors.ts";
import { VmName } from "./model.ts";

export const QEMU_XMLNS = "http://libvirt.org/schemas/domain/qemu/1.0";

/** Longest unix socket path (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

export function vmQmpSocket(qmpDir: string, vmName: string): string {
  if (!VmName.safeParse(vmName).success) throw invalid(`invalid VM name ${JSON.stringify(vmName.slice(0, 80))}`);
  const path = join(qmpDir, `${vmName}.qmp`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    throw invalid(`QMP socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes (unix socket limit): use a shorter qmpDir or VM name`);
  return path;
}

/** QEMU's `-qmp` argument for a socket path (QEMU's option syntax doubles commas inside a value). */
export function qmpArgument(socketPath: string): string {
  if (/[\0\n]/.test(socketPath)) throw invalid("QMP socket path holds a NUL or newline");
  return `unix:${socketPath.replaceAll(",", ",,")},server=on,wait=off`;
}

/**
 * Creates the socket directory (0750) owned by QEMU's user and group — the
 * owner of `libvirtQemuDir` — or fixes its owner and mode. Returns the owner.
 */
export function ensureQmpDir(qmpDir: string, libvirtQemuDir: string, setting: "qmpDir" | "frameSocketDir" = "qmpDir"): { uid: number; gid: number } {
  let owner: { uid: number; gid: number };
  try {
    const st = statSync(libvirtQemuDir);
    owner = { uid: st.uid, gid: st.gid };
  } catch {
    // libvirt not installed or never started: QEMU would run as root here
    owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  }
  try {
    mkdirSync(qmpDir, { recursive: true, mode: 0o750 });
    const st = lstatSync(qmpDir);
    if (!st.isDirectory()) throw new Error("not a directory");
    if (st.uid !== owner.uid || st.gid !== owner.gid) chownSync(qmpDir, owner.uid, owner.gid);
    if ((st.mode & 0o7777) !== 0o750) chmodSync(qmpDir, 0o750);
  } catch (err) {
    throw new AppError(setting === "qmpDir" ? "QMP_DIR_UNUSABLE" : "FRAME_SOCKET_DIR_UNUSABLE", `cannot prepare ${qmpDir} (config ${setting}) for QEMU's user ${owner.uid}:${owner.gid}: ${(err as Error).message}`, {
      status: 500,
      cause: err,
    });
  }
  return owner;
}
