/**
 * A minimal QMP (QEMU Machine Protocol) client over a unix socket.
 *
 * Wire: newline-delimited JSON. The server greets with `{"QMP": ...}`; the
 * client must send `qmp_capabilities` before other commands. Replies are
 * `{"return": ...}` or `{"error": {"class", "desc"}}`, in command order, and
 * carry back the `id` we sent. Asynchronous `{"event": ...}` lines may appear
 * between replies.
 *
 * Bounds: one line ≤ maxLineBytes (the reply of `query-qmp-schema` is the
 * largest we read, ~150 KiB on QEMU 7.2), at most maxInFlight commands
 * outstanding, every command times out.
 */
import { connect, type Socket } from "node:net";
import { AppError } from "../errors.ts";

export class QmpError extends AppError {
  readonly qmpClass: string;
  constructor(qmpClass: string, desc: string) {
    super("QMP_ERROR", `QEMU refused the command: ${desc}`, { status: 502 });
    this.qmpClass = qmpClass;
  }
}

export interface QmpClientOptions {
  socketPath: string;
  /** Per-command timeout (default 5000 ms). */
  timeoutMs?: number;
  /** Connect + greeting timeout (default 3000 ms). */
  connectTimeoutMs?: number;
  maxLineBytes?: number;
  maxInFlight?: number;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class QmpClient {
  private socket: Socket | null = null;
  private buf = "";
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private greeted: ((v: unknown) => void) | null = null;
  private closedReason: Error | null = null;
  private closeListeners: ((err: Error) => void)[] = [];
  private readonly timeoutMs: number;
  private readonly maxLineBytes: number;
  private readonly maxInFlight: number;
  version: { major: number; minor: number; micro: number } | null = null;

  constructor(private readonly opts: QmpClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxLineBytes = opts.maxLineBytes ?? 4 * 1024 * 1024;
    this.maxInFlight = opts.maxInFlight ?? 64;
  }

  get connected(): boolean {
    return this.socket !== null && this.closedReason === null;
  }

  /** Called once when the connection ends (error, EOF or close()). */
  onClose(listener: (err: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /** Connect, read the greeting, negotiate capabilities. */
  async connect(): Promise<void> {
    const limit = this.opts.connectTimeoutMs ?? 3000;
    const socket = connect({ path: this.opts.socketPath });
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (err) => this.fail(new AppError("QMP_DISCONNECTED", `QMP socket error: ${err.message}`, { status: 502, cause: err })));
    socket.on("close", () => this.fail(new AppError("QMP_DISCONNECTED", "QMP socket closed", { status: 502 })));
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const greeting = new Promise<unknown>((resolve, reject) => {
        this.greeted = resolve;
        this.closeListeners.push(reject);
        timer = setTimeout(
          () => reject(new AppError("QMP_TIMEOUT", `no QMP greeting within ${limit} ms on ${this.opts.socketPath}`, { status: 504 })),
          limit,
        );
      });
      const g = await greeting;
      const v = (g as { QMP?: { version?: { qemu?: { major: number; minor: number; micro: number } } } }).QMP?.version?.qemu;
      this.version = v ?? null;
      await this.execute("qmp_capabilities");
    } catch (err) {
      this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Run one command; resolves with its `return` value, rejects with QmpError. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const socket = this.socket;
    if (!socket || this.closedReason) {
      return Promise.reject(this.closedReason ?? new AppError("QMP_DISCONNECTED", "QMP not connected", { status: 502 }));
    }
    if (this.pending.size >= this.maxInFlight) {
      return Promise.reject(new AppError("QMP_BUSY", `more than ${this.maxInFlight} QMP commands in flight`, { status: 503 }));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AppError("QMP_TIMEOUT", `QMP command ${command} timed out after ${this.timeoutMs} ms`, { status: 504 }));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      socket.write(JSON.stringify(msg) + "\n");
    });
  }

  close(): void {
    this.fail(new AppError("QMP_DISCONNECTED", "QMP connection closed", { status: 502 }));
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onLine(line);
      if (this.closedReason) return;
    }
    if (this.buf.length > this.maxLineBytes) {
      this.fail(new AppError("QMP_PROTOCOL", `QMP line longer than ${this.maxLineBytes} bytes`, { status: 502 }));
    }
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.fail(new AppError("QMP_PROTOCOL", "QMP sent a line that is not JSON", { status: 502 }));
      return;
    }
    if (typeof msg !== "object" || msg === null) return;
    const m = msg as { QMP?: unknown; event?: unknown; id?: unknown; return?: unknown; error?: { class?: unknown; desc?: unknown } };
    if (m.QMP !== undefined) {
      this.greeted?.(m);
      this.greeted = null;
      return;
    }
    if (m.event !== undefined) return;
    if (typeof m.id !== "number") return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error) p.reject(new QmpError(String(m.error.class ?? "GenericError"), String(m.error.desc ?? "unknown error")));
    else p.resolve(m.return);
  }

  private fail(err: Error): void {
    if (this.closedReason) return;
    this.closedReason = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.socket?.destroy();
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const l of listeners) l(err);
  }
}
