/**
 * The display sockets of the VMs the appliance defines: SPICE and VNC listen
 * on a unix socket (`<listen type='socket' socket='<spiceDir>/<vm>.spice'/>`,
 * `.vnc`), never on TCP. Neither protocol is given a password here, so the
 * file system is the only gate and it has to be tight:
 *
 *   <spiceDir>            QEMU's user : adminGroup, mode 2750
 *   <spiceDir>/<vm>.spice QEMU's user : adminGroup, mode 0660
 *
 * QEMU (libvirt's qemu user, the owner of `libvirtQemuDir`) creates the socket,
 * so the directory is that user's; the setgid bit hands the socket the admin
 * group (the desktop user who runs looking-glass-client is in it), whose
 * members may enter (r-x) and connect; root connects anyway; anybody else
 * cannot even reach the path. QEMU creates the socket with libvirt's umask
 * (002: srwxrwxr-x) and qemu.conf has no setting for a display socket's mode,
 * so `vm start` sets group and mode once QEMU has created it
 * (secureGraphicsSockets). QEMU's user owns the directory and could swap the
 * socket for a symlink: the group is set with lchown (never follows one), and
 * the mode by `chmod` run as the socket's owner (setpriv), so a swapped name
 * reaches nothing QEMU's user could not change itself. QEMU leaves a SPICE socket behind when it exits
 * (it unlinks a stale one before binding at the next start): `vm stop` and
 * `vm delete` remove the VM's (removeGraphicsSockets). Without the admin group (it does not exist on this
 * host) the directory is 0700: root and QEMU only.
 */
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { AppError, invalid } from "../errors.ts";
import { idOf } from "./host.ts";
import { VmName } from "./model.ts";
import { domainXmlParser } from "./virsh.ts";

/** Longest unix socket path (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

export type GraphicsKind = "spice" | "vnc";

export function vmGraphicsSocket(spiceDir: string, vmName: string, kind: GraphicsKind): string {
  if (!VmName.safeParse(vmName).success) throw invalid(`invalid VM name ${JSON.stringify(vmName.slice(0, 80))}`);
  if (/[\0\n\r]/.test(spiceDir)) throw invalid("display socket directory (config spiceDir) holds a NUL or newline");
  const path = join(spiceDir, `${vmName}.${kind}`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    throw invalid(`${kind.toUpperCase()} socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes (unix socket limit): use a shorter spiceDir or VM name`);
  return path;
}

export interface GraphicsDirOwner {
  uid: number;
  gid: number;
  /** Directory mode: 02750 with the admin group, 0700 without it. */
  mode: number;
  /** Socket mode once secured: 0660 with the admin group, 0600 without it. */
  socketMode: number;
  /** The admin group's name when it exists; null: root and QEMU only. */
  group: string | null;
}

/** Who the directory belongs to: QEMU's user (owner of libvirtQemuDir), the admin group when it exists. */
export function graphicsDirOwner(libvirtQemuDir: string, adminGroup: string, groupFile = "/etc/group"): GraphicsDirOwner {
  let uid: number;
  let qemuGid: number;
  try {
    const st = statSync(libvirtQemuDir);
    uid = st.uid;
    qemuGid = st.gid;
  } catch {
    // libvirt not installed or never started: QEMU would run as root here
    uid = process.getuid?.() ?? 0;
    qemuGid = process.getgid?.() ?? 0;
  }
  const gid = idOf(groupFile, adminGroup);
  if (gid === null) return { uid, gid: qemuGid, mode: 0o700, socketMode: 0o600, group: null };
  return { uid, gid, mode: 0o2750, socketMode: 0o660, group: adminGroup };
}

/** Creates the directory for QEMU's user with the admin group, or fixes owner and mode. */
export function ensureGraphicsDir(spiceDir: string, owner: GraphicsDirOwner): GraphicsDirOwner {
  try {
    if (!existsSync(spiceDir)) mkdirSync(spiceDir, { recursive: true, mode: 0o700 });
    const st = lstatSync(spiceDir);
    if (!st.isDirectory()) throw new Error("not a directory");
    if (st.uid !== owner.uid || st.gid !== owner.gid) chownSync(spiceDir, owner.uid, owner.gid);
    // chown clears the setgid bit: set the mode after it, always
    if ((lstatSync(spiceDir).mode & 0o7777) !== owner.mode) chmodSync(spiceDir, owner.mode);
  } catch (err) {
    throw new AppError("SPICE_DIR_UNUSABLE", `cannot prepare ${spiceDir} (config spiceDir) for QEMU's user ${owner.uid}:${owner.gid}: ${(err as Error).message}`, {
      status: 500,
      cause: err,
    });
  }
  return owner;
}

/** Gives each existing display socket the directory's group and the socket mode; returns what it saw. */
export function secureGraphicsSockets(paths: string[], owner: GraphicsDirOwner): { path: string; mode: number; uid: number; gid: number }[] {
  const out: { path: string; mode: number; uid: number; gid: number }[] = [];
  for (const path of paths) {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (!st.isSocket()) throw new AppError("SPICE_SOCKET_UNUSABLE", `${path} is not a socket`, { status: 500 });
    out.push({ path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    try {
      if (st.gid !== owner.gid) lchownSync(path, st.uid, owner.gid);
      if ((st.mode & 0o7777) !== owner.socketMode) chmodAsOwner(path, st.uid, owner.socketMode);
    } catch (err) {
      throw new AppError("SPICE_SOCKET_UNUSABLE", `cannot set group/mode of ${path}: ${(err as Error).message}`, { status: 500, cause: err });
    }
  }
  return out;
}

/** chmod of a path in a directory another user controls, with that user's rights (root's own: directly). */
function chmodAsOwner(path: string, uid: number, mode: number): void {
  if (uid === (process.getuid?.() ?? 0)) return chmodSync(path, mode);
  const argv = ["setpriv", `--reuid=${uid}`, `--regid=${lstatSync(path).gid}`, "--clear-groups", "chmod", mode.toString(8), "--", path];
  const r = Bun.spawnSync(argv, { stdout: "ignore", stderr: "pipe", timeout: 10_000 });
  if (r.exitCode !== 0) throw new Error(`setpriv chmod as uid ${uid}: ${r.stderr.toString().trim().slice(0, 200) || `exit ${r.exitCode}`}`);
}

/** Removes a VM's display sockets from the directory (only sockets: anything else stays). */
export function removeGraphicsSockets(spiceDir: string, vmName: string): void {
  for (const kind of ["spice", "vnc"] as const) {
    let path: string;
    try {
      path = vmGraphicsSocket(spiceDir, vmName, kind);
      if (lstatSync(path).isSocket()) rmSync(path, { force: true });
    } catch {
      // absent, or a name that cannot carry a socket: nothing to remove
    }
  }
}

/** One <graphics> element of a domain: its type and where it listens. */
export interface GraphicsListen {
  type: string;
  /** Unix sockets it listens on. */
  sockets: string[];
  /** TCP listens (address, network, or a bare listen/port/autoport attribute): must be none. */
  tcp: string[];
}

type Node = Record<string, unknown>;
const obj = (v: unknown): Node => (v && typeof v === "object" && !Array.isArray(v) ? (v as Node) : {});
const arr = (v: unknown): Node[] => (Array.isArray(v) ? v.map(obj) : v === undefined ? [] : [obj(v)]);
const str = (v: unknown): string | null => (typeof v === "string" ? v : typeof v === "number" ? String(v) : null);

/** Graphics types that serve remote clients over a network protocol. */
const NETWORK_GRAPHICS = new Set(["spice", "vnc", "rdp"]);

export function graphicsListens(xml: string): GraphicsListen[] {
  const d = obj(obj(domainXmlParser.parse(xml)).domain);
  return arr(obj(d.devices).graphics).map((g) => {
    const type = str(g["@_type"]) ?? "";
    const sockets: string[] = [];
    const tcp: string[] = [];
    const listens = arr(g.listen);
    for (const l of listens) {
      const lt = str(l["@_type"]);
      if (lt === "socket") sockets.push(str(l["@_socket"]) ?? "(libvirt's own socket)");
      else if (lt === "address") tcp.push(`address ${str(l["@_address"]) ?? "(qemu.conf default)"}`);
      else if (lt === "network") tcp.push(`network ${str(l["@_network"]) ?? "?"}`);
    }
    if (NETWORK_GRAPHICS.has(type)) {
      const none = listens.some((l) => str(l["@_type"]) === "none");
      const port = str(g["@_port"]);
      if (str(g["@_listen"]) !== null && tcp.length === 0) tcp.push(`address ${str(g["@_listen"])}`);
      // no <listen> at all: libvirt listens where qemu.conf says (TCP)
      else if (listens.length === 0 && str(g["@_socket"]) === null && !none) tcp.push(`address (qemu.conf default${port && port !== "-1" ? `, port ${port}` : ""})`);
      const attr = str(g["@_socket"]);
      if (attr !== null && !sockets.includes(attr)) sockets.push(attr);
    }
    return { type, sockets, tcp };
  });
}
