/**
 * libenet (ENet 1.3, Debian's libenet7) through bun:ffi: the reliable-UDP transport of the
 * GameStream control stream. JS drives it by polling `enet_host_service` with a zero timeout (no
 * native threads, no callbacks). Only this file touches ENet pointers.
 *
 * x86-64 layouts read here (enet/enet.h 1.3.17):
 *   ENetAddress { u32 host (network order) @0; u16 port @4 }                 8 bytes
 *   ENetEvent   { u32 type @0; ENetPeer* peer @8; u8 channelID @16; u32 data @20; ENetPacket* packet @24 }  32 bytes
 *   ENetPacket  { size_t referenceCount @0; u32 flags @8; u8* data @16; size_t dataLength @24; ... }
 *   ENetPeer    { ListNode @0 (16); ENetHost* @16; u16 outgoingPeerID @24; u16 incomingPeerID @26;
 *                 u32 connectID @28; u8 outgoingSessionID @32; u8 incomingSessionID @33; ENetAddress address @36 }
 */
import { FFIType, ptr, read, toArrayBuffer, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import { NativeLibraryError, openSymbols } from "./native.ts";

const symbols = {
  enet_initialize: { args: [], returns: FFIType.i32 },
  enet_address_set_host_ip: { args: [FFIType.ptr, FFIType.cstring], returns: FFIType.i32 },
  enet_host_create: { args: [FFIType.ptr, "usize", "usize", FFIType.u32, FFIType.u32], returns: FFIType.ptr },
  enet_host_destroy: { args: [FFIType.ptr], returns: FFIType.void },
  enet_host_connect: { args: [FFIType.ptr, FFIType.ptr, "usize", FFIType.u32], returns: FFIType.ptr },
  enet_host_service: { args: [FFIType.ptr, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  enet_host_flush: { args: [FFIType.ptr], returns: FFIType.void },
  enet_packet_create: { args: [FFIType.ptr, "usize", FFIType.u32], returns: FFIType.ptr },
  enet_packet_destroy: { args: [FFIType.ptr], returns: FFIType.void },
  enet_peer_send: { args: [FFIType.ptr, FFIType.u8, FFIType.ptr], returns: FFIType.i32 },
  enet_peer_disconnect: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.void },
  enet_peer_disconnect_later: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.void },
  enet_peer_disconnect_now: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.void },
  enet_peer_reset: { args: [FFIType.ptr], returns: FFIType.void },
  enet_peer_timeout: { args: [FFIType.ptr, FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.void },
} as const satisfies Record<string, FFIFunction>;

export const ENET_LIBRARY = "libenet.so.7";
export const PACKET_FLAG_RELIABLE = 1;
/** Largest packet this binding hands out or accepts (control messages are small). */
export const MAX_PACKET_BYTES = 64 * 1024;

let lib: Library<typeof symbols> | null = null;

function enet(): Library<typeof symbols> {
  if (lib) return lib;
  const l = openSymbols(ENET_LIBRARY, symbols);
  if (l.symbols.enet_initialize() !== 0) {
    l.close();
    throw new NativeLibraryError("enet_initialize failed");
  }
  lib = l;
  return l;
}

/** An opaque ENet peer handle (valid until its disconnect event has been returned). */
export type EnetPeer = number;

export type EnetEvent =
  | { type: "connect"; peer: EnetPeer; data: number; address: string }
  | { type: "disconnect"; peer: EnetPeer; data: number }
  | { type: "receive"; peer: EnetPeer; channel: number; data: Uint8Array }
  /** A packet over MAX_PACKET_BYTES: dropped unread. */
  | { type: "oversized"; peer: EnetPeer; channel: number; bytes: number };

function ipv4(hostNetworkOrder: number): string {
  return [0, 8, 16, 24].map((s) => (hostNetworkOrder >>> s) & 0xff).join(".");
}

function address(host: string, port: number): Uint8Array {
  const addr = new Uint8Array(8);
  if (enet().symbols.enet_address_set_host_ip(ptr(addr), Buffer.from(`${host}\0`)) !== 0) {
    throw new NativeLibraryError(`not an IPv4 address: ${host}`);
  }
  new DataView(addr.buffer).setUint16(4, port, true);
  return addr;
}

export interface EnetHostOptions {
  /** Bind address (IPv4) and port; omit for a client host on an ephemeral port. */
  bind?: { host: string; port: number };
  peers: number;
  channels: number;
}

export class EnetHost {
  private handle: Pointer | null;
  private readonly event = new Uint8Array(32);
  private readonly eventView = new DataView(this.event.buffer);
  private readonly eventPtr = ptr(this.event);

  constructor(opts: EnetHostOptions) {
    const l = enet();
    const addr = opts.bind ? address(opts.bind.host, opts.bind.port) : null;
    this.handle = l.symbols.enet_host_create(addr ? ptr(addr) : null, opts.peers, opts.channels, 0, 0) as Pointer | null;
    if (!this.handle) {
      throw new NativeLibraryError(opts.bind ? `cannot bind ENet host on ${opts.bind.host}:${opts.bind.port}` : "cannot create ENet host");
    }
  }

  get open(): boolean {
    return this.handle !== null;
  }

  private h(): Pointer {
    if (!this.handle) throw new NativeLibraryError("ENet host is closed");
    return this.handle;
  }

  /** One service step: sends what is queued, returns the next event or null (never blocks with timeoutMs 0). */
  service(timeoutMs = 0): EnetEvent | null {
    const l = enet();
    const rc = l.symbols.enet_host_service(this.h(), this.eventPtr, timeoutMs);
    if (rc <= 0) return null;
    const v = this.eventView;
    const type = v.getUint32(0, true);
    const peer = Number(v.getBigUint64(8, true));
    const data = v.getUint32(20, true);
    if (type === 1) return { type: "connect", peer, data, address: `${ipv4(read.u32(peer as Pointer, 36))}:${read.u16(peer as Pointer, 40)}` };
    if (type === 2) return { type: "disconnect", peer, data };
    if (type === 3) {
      const packet = Number(v.getBigUint64(24, true)) as Pointer;
      const dataPtr = Number(read.u64(packet, 16)) as Pointer;
      const len = Number(read.u64(packet, 24));
      const channel = this.event[16]!;
      if (len > MAX_PACKET_BYTES) {
        l.symbols.enet_packet_destroy(packet);
        return { type: "oversized", peer, channel, bytes: len };
      }
      const bytes = len > 0 ? new Uint8Array(toArrayBuffer(dataPtr, 0, len)).slice() : new Uint8Array(0);
      l.symbols.enet_packet_destroy(packet);
      return { type: "receive", peer, channel, data: bytes };
    }
    return null;
  }

  connect(host: string, port: number, channels: number, data: number): EnetPeer {
    const addr = address(host, port);
    const peer = enet().symbols.enet_host_connect(this.h(), ptr(addr), channels, data >>> 0);
    if (!peer) throw new NativeLibraryError("enet_host_connect: no free peer");
    return peer as number;
  }

  /** Queues one packet (copied); false if ENet refused it. */
  send(peer: EnetPeer, channel: number, data: Uint8Array, reliable = true): boolean {
    if (data.length === 0 || data.length > MAX_PACKET_BYTES) return false;
    const l = enet().symbols;
    const packet = l.enet_packet_create(ptr(data), data.length, reliable ? PACKET_FLAG_RELIABLE : 0);
    if (!packet) return false;
    if (l.enet_peer_send(peer as Pointer, channel, packet) !== 0) {
      l.enet_packet_destroy(packet);
      return false;
    }
    return true;
  }

  flush(): void {
    enet().symbols.enet_host_flush(this.h());
  }

  /** ENet's own peer timeout: minimum and maximum time (ms) without acknowledgements. */
  peerTimeout(peer: EnetPeer, minMs: number, maxMs: number): void {
    enet().symbols.enet_peer_timeout(peer as Pointer, 0, minMs, maxMs);
  }

  /** Graceful disconnect after queued packets went out; a disconnect event follows. */
  disconnectLater(peer: EnetPeer, data = 0): void {
    enet().symbols.enet_peer_disconnect_later(peer as Pointer, data >>> 0);
  }

  /** Immediate disconnect (one unacknowledged notice, no event). */
  disconnectNow(peer: EnetPeer, data = 0): void {
    enet().symbols.enet_peer_disconnect_now(peer as Pointer, data >>> 0);
  }

  close(): void {
    if (!this.handle) return;
    enet().symbols.enet_host_destroy(this.handle);
    this.handle = null;
  }
}

/** Whether libenet can be loaded here (tests state the reason when it cannot). */
export function enetAvailable(): boolean {
  try {
    enet();
    return true;
  } catch {
    return false;
  }
}
