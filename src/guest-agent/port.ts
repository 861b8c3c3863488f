/**
 * The virtio-serial port as a sequence of host sessions.
 *
 * The port's device node stays open for the agent's lifetime (data from the
 * host is dropped while no guest process holds it). Sessions are cut out of
 * the byte stream by the host's preamble (../guest/preamble.ts): every
 * preamble starts a new session and supersedes the current one, whose later
 * writes are dropped so they never reach the new session's host. A read that
 * returns 0 bytes means the host side is not connected: the current session
 * ends, and the port is polled until the host connects again. Bytes outside
 * any session (before the first preamble) are discarded.
 */
import { closeSync, openSync, read, write } from "node:fs";
import { Duplex } from "node:stream";
import type { Logger } from "../log.ts";
import { NeedleScanner, PREAMBLE_MAGIC } from "../guest/preamble.ts";

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

/** One writer per port: writes of all sessions go out in order, never interleaved. */
export class PortWriter {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly sink: (data: Buffer) => Promise<void>) {}

  /** Writes `data` when its turn comes, unless `live()` is false by then (the session was superseded). */
  enqueue(data: Buffer, live: () => boolean): Promise<void> {
    const next = this.chain.then(() => (live() ? this.sink(data) : undefined));
    this.chain = next.catch(() => {});
    return next;
  }
}

export class PortSession extends Duplex {
  live = true;
  constructor(private readonly writer: PortWriter) {
    super();
  }
  override _read(): void {
    // Data is pushed by the port's read loop.
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.live) return cb();
    this.writer.enqueue(chunk, () => this.live).then(() => cb(), (err: Error) => cb(err));
  }
  /** Ends the session: its stream ends, and nothing it writes from now on reaches the port. */
  finish(): void {
    if (!this.live) return;
    this.live = false;
    this.push(null);
    this.destroy();
  }
}

/**
 * Splits the host → guest byte stream into sessions at each preamble. Pure
 * bookkeeping, no I/O: the port loop feeds it what it reads.
 */
export class SessionSplitter {
  private readonly scanner = new NeedleScanner(PREAMBLE_MAGIC);
  private current: PortSession | null = null;
  /** Bytes seen outside any session since the last report. */
  discarded = 0;

  constructor(
    private readonly writer: PortWriter,
    private readonly onSession: (s: PortSession) => void,
  ) {}

  push(chunk: Buffer): void {
    let pos = 0;
    for (const start of this.scanner.scan(chunk)) {
      if (start > pos) this.deliver(chunk.subarray(pos, start));
      this.current?.finish();
      const s = new PortSession(this.writer);
      this.current = s;
      this.onSession(s);
      // A preamble split across reads: its first bytes went to the previous session; give them to this one.
      if (start < 0) s.push(Buffer.from(PREAMBLE_MAGIC.subarray(0, -start)));
      pos = Math.max(start, 0);
    }
    if (pos < chunk.length) this.deliver(chunk.subarray(pos));
  }

  /** The host disconnected: the session ends; a split preamble does not carry over. */
  hostGone(): boolean {
    this.scanner.reset();
    const had = this.current !== null;
    this.current?.finish();
    this.current = null;
    return had;
  }

  private deliver(bytes: Buffer): void {
    if (this.current?.live) this.current.push(Buffer.from(bytes));
    else this.discarded += bytes.length;
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
  const splitter = new SessionSplitter(new PortWriter((data) => writeAll(fd, data)), (s) => {
    void opts.onSession(s).catch((err: Error) => opts.log.error("agent session failed", { error: err.message }));
  });
  const reportDiscarded = () => {
    if (!splitter.discarded) return;
    opts.log.warn("bytes outside any host session discarded", { bytes: splitter.discarded });
    splitter.discarded = 0;
  };
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
        if (splitter.hostGone()) opts.log.info("host disconnected from the agent port");
        reportDiscarded();
        await new Promise((r) => setTimeout(r, opts.idleMs ?? 250));
        continue;
      }
      splitter.push(buf.subarray(0, n));
      reportDiscarded();
    }
  } finally {
    splitter.hostGone();
    closeSync(fd);
  }
}
