/**
 * The virtio-serial port as a sequence of host sessions.
 *
 * The port's device node stays open for the agent's lifetime (data from the
 * host is dropped while no guest process holds it). A read that returns 0
 * bytes means the host side is not connected: the current session's stream
 * ends, and the port is polled until the host connects again, which starts a
 * new session (a new TLS handshake).
 */
import { closeSync, openSync, read, write } from "node:fs";
import { Duplex } from "node:stream";
import type { Logger } from "../log.ts";

const READ_SIZE = 64 * 1024;

function readAsync(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

function writeAll(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number) => {
      if (off >= data.length) return resolve();
      write(fd, data, off, data.length - off, null, (err, n) => (err ? reject(err) : step(off + n)));
    };
    step(0);
  });
}

class PortSession extends Duplex {
  constructor(private readonly fd: number) {
    super();
  }
  override _read(): void {
    // Data is pushed by the port's read loop.
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    writeAll(this.fd, chunk).then(() => cb(), (err: Error) => cb(err));
  }
}

export interface PortLoopOptions {
  path: string;
  log: Logger;
  /** Called with each new session's stream; resolves when that session ends. */
  onSession: (stream: Duplex) => Promise<unknown>;
  /** Poll interval while the host is not connected. */
  idleMs?: number;
  signal?: AbortSignal;
}

export async function runPortLoop(opts: PortLoopOptions): Promise<void> {
  const fd = openSync(opts.path, "r+");
  opts.log.info("agent port open", { port: opts.path });
  const buf = Buffer.allocUnsafe(READ_SIZE);
  let session: PortSession | null = null;
  let done: Promise<unknown> | null = null;
  try {
    while (!opts.signal?.aborted) {
      let n: number;
      try {
        n = await readAsync(fd, buf);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EPIPE" || code === "ENOTCONN") n = 0;
        else throw err;
      }
      if (n === 0) {
        if (session) {
          session.push(null);
          session.destroy();
          await done;
          session = null;
          done = null;
          opts.log.info("host disconnected from the agent port");
        }
        await new Promise((r) => setTimeout(r, opts.idleMs ?? 250));
        continue;
      }
      if (!session) {
        const s: PortSession = new PortSession(fd);
        session = s;
        done = opts.onSession(s).finally(() => {
          if (session === s) session = null;
        });
      }
      session.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    session?.destroy();
    closeSync(fd);
  }
}
