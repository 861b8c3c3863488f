/**
 * Peer credentials of a connected unix socket (SO_PEERCRED): the kernel's
 * word for which process, user and group are on the other end. libc's
 * getsockopt through bun:ffi; only ffi/ calls dlopen.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

type Libc = { symbols: { getsockopt: (fd: number, level: number, name: number, value: unknown, len: unknown) => number } };
let libc: Libc | null = null;

function load(): Libc {
  libc ??= dlopen("libc.so.6", {
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  }) as unknown as Libc;
  return libc;
}

/** The credentials of the process on the other end of unix socket `fd`, or null when the kernel gives none. */
export function peerCredentials(fd: number): PeerCredentials | null {
  if (!Number.isInteger(fd) || fd < 0) return null;
  // struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit fields
  const buf = new ArrayBuffer(12);
  const len = new ArrayBuffer(4);
  new Uint32Array(len)[0] = 12;
  const rc = load().symbols.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptr(buf), ptr(len));
  if (rc !== 0 || new Uint32Array(len)[0] !== 12) return null;
  const v = new DataView(buf);
  return { pid: v.getInt32(0, true), uid: v.getUint32(4, true), gid: v.getUint32(8, true) };
}
