/**
 * The NVF1 listeners of VMs whose frames come over vsock or a unix socket, held from a VM's
 * first stream session until the pool closes. A guest's exporter writes one byte stream:
 * through a virtio-serial channel QEMU keeps one connection to the listener, and a listener
 * closed between sessions would leave the guest mid-frame on the next connection (NVF1 has
 * no resynchronisation). Kept open, the listener reads on between sessions (only the newest
 * frame is kept) and the next session's pipeline takes up the same stream. One session reads
 * a listener at a time: the reader hands each frame out once.
 */
import { chmodSync, chownSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { VsockNative } from "../../ffi/vsock.ts";
import { CaptureError } from "./source.ts";
import { SocketFrameSource, type SocketEndpoint } from "./socket-source.ts";

export class NvfListenerPool {
  private readonly listeners = new Map<string, SocketFrameSource>();
  private readonly inUse = new Set<string>();

  constructor(private readonly native: VsockNative) {}

  /** The endpoint's listener (opened on first use) for one reader; release() gives it back. */
  acquire(endpoint: SocketEndpoint, owner: string): { source: SocketFrameSource; release(): void } {
    const key = endpoint.kind === "unix" ? `unix:${endpoint.path}` : `vsock:${endpoint.port ?? 0}`;
    if (this.inUse.has(key))
      throw new CaptureError("CAPTURE_SOURCE_BUSY", `${owner}: its frames (${key}) already go to another session; NVF1 has one reader`, { status: 409 });
    let source = this.listeners.get(key);
    if (!source) {
      source = new SocketFrameSource(this.native, endpoint);
      if (endpoint.kind === "unix") {
        try {
          // QEMU (a frames channel) connects as its own user: the socket takes its directory's owner
          // (vm start makes that QEMU's user, mode 0750), read-write for owner and group
          const dir = statSync(dirname(endpoint.path));
          chownSync(endpoint.path, dir.uid, dir.gid);
          chmodSync(endpoint.path, 0o660);
        } catch (err) {
          source.close();
          throw new CaptureError("CAPTURE_SOURCE_UNAVAILABLE", `${owner}: cannot hand ${endpoint.path} to QEMU's user: ${(err as Error).message}`, { status: 500, cause: err });
        }
      }
      this.listeners.set(key, source);
    }
    this.inUse.add(key);
    let released = false;
    return {
      source,
      release: () => {
        if (released) return;
        released = true;
        this.inUse.delete(key);
      },
    };
  }

  /** The endpoints open now (tests, diagnostics). */
  get open(): string[] {
    return [...this.listeners.keys()];
  }

  /** Closes one endpoint's listener (its VM shut down); false when it is being read or not open. */
  closeIdle(endpoint: SocketEndpoint): boolean {
    const key = endpoint.kind === "unix" ? `unix:${endpoint.path}` : `vsock:${endpoint.port ?? 0}`;
    const s = this.listeners.get(key);
    if (!s || this.inUse.has(key)) return false;
    s.close();
    this.listeners.delete(key);
    return true;
  }

  /** Closes every listener (their sockets are removed); readers must have stopped first. */
  close(): void {
    for (const s of this.listeners.values()) s.close();
    this.listeners.clear();
    this.inUse.clear();
  }
}
