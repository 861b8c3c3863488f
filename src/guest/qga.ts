/**
 * Client for the standard QEMU guest agent (virtio-serial port
 * org.qemu.guest_agent.0), so the basics work before our agent is installed.
 *
 * Wire: one JSON command per line, `{"execute": ..., "arguments": ...}`;
 * each answer is one line, `{"return": ...}` or `{"error": {"class","desc"}}`.
 * qemu-ga answers strictly in order, so commands are queued one at a time.
 * Resynchronisation: send 0xFF (resets qemu-ga's parser) followed by
 * guest-sync-delimited with a random id; qemu-ga writes 0xFF before that
 * answer, so everything up to the 0xFF (stale answers, the parse error for
 * the 0xFF itself) is discarded, and the answer must echo the id.
 *
 * qemu-ga exits when a client disconnects with answers unread: close() waits
 * for the queue to drain first.
 */
import net from "node:net";
import { randomInt } from "node:crypto";
import { z } from "zod";
import { AppError } from "../errors.ts";

const MAX_LINE = 4 * 1024 * 1024;

export const QgaOsInfo = z.object({
  id: z.string().optional(),
  name: z.string().optional(),
  "pretty-name": z.string().optional(),
  version: z.string().optional(),
  "version-id": z.string().optional(),
  "kernel-release": z.string().optional(),
  "kernel-version": z.string().optional(),
  machine: z.string().optional(),
});
export type QgaOsInfo = z.infer<typeof QgaOsInfo>;

export const QgaInfo = z.object({
  version: z.string(),
  supported_commands: z.array(z.object({ name: z.string(), enabled: z.boolean(), "success-response": z.boolean().optional() })),
});
export type QgaInfo = z.infer<typeof QgaInfo>;

const ExecStatus = z.object({
  exited: z.boolean(),
  exitcode: z.number().int().optional(),
  signal: z.number().int().optional(),
  "out-data": z.string().optional(),
  "err-data": z.string().optional(),
  "out-truncated": z.boolean().optional(),
  "err-truncated": z.boolean().optional(),
});

export interface QgaExecResult {
  pid: number;
  exitCode: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export const qgaError = {
  notConnected: (why: string) => new AppError("QGA_NOT_CONNECTED", `QEMU guest agent not reachable: ${why}`, { status: 503 }),
  timeout: (cmd: string, ms: number) => new AppError("QGA_TIMEOUT", `QEMU guest agent did not answer ${cmd} within ${ms} ms`, { status: 504 }),
  failed: (cmd: string, cls: string, desc: string) => new AppError("QGA_COMMAND_FAILED", `${cmd}: ${cls}: ${desc}`, { status: 502, details: { class: cls } }),
  bad: (cmd: string, why: string) => new AppError("QGA_BAD_RESPONSE", `QEMU guest agent answered ${cmd} with ${why}`, { status: 502 }),
};

type Waiter = { resolve: (line: string) => void; reject: (e: Error) => void };

export class QgaClient {
  private sock: net.Socket | null = null;
  private buf: Buffer[] = [];
  private bufLen = 0;
  private waiter: Waiter | null = null;
  /** When set, bytes up to and including the next 0xFF are discarded. */
  private awaitSentinel = false;
  /** Set after a timeout: a late answer may still arrive, so resync first. */
  private needSync = false;
  private queue: Promise<unknown> = Promise.resolve();
  private closedReason: string | null = null;

  constructor(private readonly opts: { socketPath: string; timeoutMs?: number }) {}

  async connect(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = net.createConnection({ path: this.opts.socketPath });
      const t = setTimeout(() => {
        s.destroy();
        reject(qgaError.notConnected("connect timed out"));
      }, this.opts.timeoutMs ?? 5000);
      s.once("error", (e) => {
        clearTimeout(t);
        reject(qgaError.notConnected(e.message));
      });
      s.once("connect", () => {
        clearTimeout(t);
        this.sock = s;
        s.on("data", (d: Buffer) => this.onData(d));
        s.on("close", () => this.onClose("connection closed"));
        s.on("error", (e) => this.onClose(e.message));
        resolve();
      });
    });
    await this.sync();
  }

  /** Waits for queued commands, then closes. */
  async close(): Promise<void> {
    await this.queue.catch(() => {});
    this.sock?.end();
    this.sock?.destroy();
    this.sock = null;
  }

  async sync(): Promise<void> {
    const id = randomInt(1, 2 ** 31);
    const r = await this.enqueue("guest-sync-delimited", { id }, true);
    if (r !== id) throw qgaError.bad("guest-sync-delimited", `id ${JSON.stringify(r)} instead of ${id}`);
  }

  async ping(): Promise<void> {
    await this.execute("guest-ping");
  }

  async info(): Promise<QgaInfo> {
    return this.parse("guest-info", QgaInfo, await this.execute("guest-info"));
  }

  async osInfo(): Promise<QgaOsInfo> {
    return this.parse("guest-get-osinfo", QgaOsInfo, await this.execute("guest-get-osinfo"));
  }

  /** guest-exec, then guest-exec-status until it exits (bounded by waitMs). */
  async exec(path: string, args: string[] = [], opts: { input?: string; waitMs?: number } = {}): Promise<QgaExecResult> {
    if (path.length === 0 || path.length > 4096 || args.length > 64 || args.some((a) => a.length > 4096))
      throw new AppError("INVALID_INPUT", "exec: path and up to 64 arguments of at most 4096 characters", { status: 422 });
    const started = this.parse(
      "guest-exec",
      z.object({ pid: z.number().int() }),
      await this.execute("guest-exec", {
        path,
        arg: args,
        "capture-output": true,
        ...(opts.input !== undefined ? { "input-data": Buffer.from(opts.input).toString("base64") } : {}),
      }),
    );
    const deadline = Date.now() + (opts.waitMs ?? 10_000);
    let delay = 10;
    for (;;) {
      const st = this.parse("guest-exec-status", ExecStatus, await this.execute("guest-exec-status", { pid: started.pid }));
      if (st.exited)
        return {
          pid: started.pid,
          exitCode: st.exitcode ?? null,
          signal: st.signal ?? null,
          stdout: Buffer.from(st["out-data"] ?? "", "base64").toString("utf8"),
          stderr: Buffer.from(st["err-data"] ?? "", "base64").toString("utf8"),
          truncated: !!(st["out-truncated"] || st["err-truncated"]),
        };
      if (Date.now() > deadline) throw qgaError.timeout(`guest-exec of ${path} (pid ${started.pid})`, opts.waitMs ?? 10_000);
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  }

  /** guest-shutdown sends no answer on success; a short wait tells errors apart. */
  async shutdown(mode: "powerdown" | "reboot" | "halt" = "powerdown"): Promise<void> {
    await this.enqueue("guest-shutdown", { mode }, false, true);
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return this.enqueue(command, args, false);
  }

  private parse<T>(cmd: string, schema: z.ZodType<T>, value: unknown): T {
    const r = schema.safeParse(value);
    if (!r.success) throw qgaError.bad(cmd, `an unexpected shape: ${r.error.issues[0]?.message ?? "invalid"}`);
    return r.data;
  }

  private enqueue(command: string, args: Record<string, unknown> | undefined, delimited: boolean, noReply = false): Promise<unknown> {
    const run = async () => {
      if (this.needSync && !delimited) {
        const id = randomInt(1, 2 ** 31);
        const r = await this.roundTrip("guest-sync-delimited", { id }, true, false);
        if (r !== id) throw qgaError.bad("guest-sync-delimited", `id ${JSON.stringify(r)} instead of ${id}`);
      }
      return this.roundTrip(command, args, delimited, noReply);
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  private async roundTrip(command: string, args: Record<string, unknown> | undefined, delimited: boolean, noReply: boolean): Promise<unknown> {
    const sock = this.sock;
    if (!sock || this.closedReason) throw qgaError.notConnected(this.closedReason ?? "not connected");
    const line = JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }) + "\n";
    const timeoutMs = noReply ? 500 : (this.opts.timeoutMs ?? 5000);
    const reply = new Promise<string | null>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = null;
        if (noReply) resolve(null);
        else {
          // The answer may still come: resync before the next command.
          this.needSync = true;
          reject(qgaError.timeout(command, timeoutMs));
        }
      }, timeoutMs);
      this.waiter = {
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
    });
    if (delimited) {
      this.awaitSentinel = true;
      this.buf = [];
      this.bufLen = 0;
      sock.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(line)]));
    } else sock.write(line);
    const text = await reply;
    if (text === null) return undefined;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      throw qgaError.bad(command, "invalid JSON");
    }
    const m = msg as { return?: unknown; error?: { class?: unknown; desc?: unknown } };
    if (m && typeof m === "object" && "error" in m && m.error)
      throw qgaError.failed(command, String(m.error.class ?? "Error"), String(m.error.desc ?? "").slice(0, 1000));
    if (!m || typeof m !== "object" || !("return" in m)) throw qgaError.bad(command, "neither return nor error");
    if (delimited) this.needSync = false;
    return m.return;
  }

  private onData(d: Buffer): void {
    let data = d;
    if (this.awaitSentinel) {
      const i = data.indexOf(0xff);
      if (i < 0) return;
      this.awaitSentinel = false;
      data = data.subarray(i + 1);
    }
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = data.subarray(start, nl);
      const line = this.bufLen ? Buffer.concat([...this.buf, piece]).toString("utf8") : piece.toString("utf8");
      this.buf = [];
      this.bufLen = 0;
      start = nl + 1;
      const w = this.waiter;
      this.waiter = null;
      if (w && line.trim()) w.resolve(line);
    }
    const rest = data.subarray(start);
    if (rest.length) {
      this.bufLen += rest.length;
      if (this.bufLen > MAX_LINE) {
        this.onClose(`answer longer than ${MAX_LINE} bytes`);
        this.sock?.destroy();
        return;
      }
      this.buf.push(Buffer.from(rest));
    }
  }

  private onClose(reason: string): void {
    if (!this.closedReason) this.closedReason = reason;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(qgaError.notConnected(reason));
  }
}
