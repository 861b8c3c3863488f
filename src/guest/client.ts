/**
 * The host's client for one VM's agent: connects to the unix socket QEMU
 * exposes for the virtio-serial port, wraps it in mutual TLS, says hello,
 * correlates requests and responses with timeouts, delivers events, and
 * reconnects with exponential backoff when the VM (or the agent) restarts.
 */
import { EventEmitter } from "node:events";
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { FramedChannel } from "./channel.ts";
import type { TlsMaterial } from "./certs.ts";
import { FrameTooLargeError } from "./framing.ts";
import { hostPreamble, newNonce, readUntilPreamble } from "./preamble.ts";
import {
  EVENT_SCHEMAS,
  issues,
  PROTOCOL_VERSION,
  RESPONSE_SCHEMAS,
  type CommandName,
  type EventEnvelope,
  type HelloResponse,
  type ResponseEnvelope,
} from "./model.ts";

export interface AgentClientOptions {
  socketPath: string;
  /** Mutual TLS (host certificate + the VM's CA); null speaks plain frames (tests, debugging). */
  tls: TlsMaterial | null;
  log: Logger;
  requestTimeoutMs?: number;
  /** Covers connect + TLS handshake + hello. */
  connectTimeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  maxFrameBytes?: number;
  /** Name sent in hello. */
  hostName?: string;
}

export type AgentState = "idle" | "connecting" | "connected" | "backoff" | "stopped";

interface Pending {
  command: CommandName;
  resolve: (data: unknown) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * What the host skips, at most, before the agent's preamble answer: output of
 * earlier sessions that QEMU kept for the next connection (a clipboard image
 * answer in flight is the largest: one 4 MiB frame, TLS-framed).
 */
const MAX_STALE_BYTES = 16 * 1024 * 1024;

export const agentError = {
  notConnected: (why: string) => new AppError("AGENT_NOT_CONNECTED", `guest agent not connected: ${why}`, { status: 503 }),
  timeout: (cmd: string, ms: number) => new AppError("AGENT_TIMEOUT", `guest agent did not answer ${cmd} within ${ms} ms`, { status: 504 }),
  failed: (cmd: string, code: string, message: string) =>
    new AppError("AGENT_COMMAND_FAILED", `${cmd} failed in the guest: ${code}: ${message}`, { status: 502, details: { code } }),
  badResponse: (cmd: string, why: string) =>
    new AppError("AGENT_BAD_RESPONSE", `guest agent answered ${cmd} with an invalid payload: ${why}`, { status: 502 }),
};

/** Events: "connected" (HelloResponse), "disconnected" (reason), "event" (EventEnvelope), "clipboard_changed" | ... (data). */
export class AgentClient extends EventEmitter {
  private channel: FramedChannel | null = null;
  private stream: Duplex | null = null;
  private pending = new Map<string, Pending>();
  private seq = 0;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private _state: AgentState = "idle";
  private _hello: HelloResponse | null = null;
  private lastError: string | null = null;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };

  constructor(private readonly opts: AgentClientOptions) {
    super();
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.backoff = opts.backoff ?? { initialMs: 250, maxMs: 15_000 };
  }

  get state(): AgentState {
    return this._state;
  }
  get hello(): HelloResponse | null {
    return this._hello;
  }
  get error(): string | null {
    return this.lastError;
  }

  /** Keeps a connection up until stop(): reconnects with backoff. */
  start(): void {
    if (this._state !== "idle" && this._state !== "stopped") return;
    this._state = "backoff";
    void this.connectLoop();
  }

  /** One attempt, no reconnect (CLI with --socket). Rejects with the reason. */
  async connectOnce(): Promise<HelloResponse> {
    this._state = "connecting";
    try {
      const hello = await this.connect();
      return hello;
    } catch (err) {
      this._state = "stopped";
      throw err;
    }
  }

  stop(): void {
    this._state = "stopped";
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.teardown("client stopped");
  }

  async request<T = unknown>(command: CommandName, data: unknown = {}, timeoutMs = this.timeoutMs): Promise<T> {
    const channel = this.channel;
    if (!channel || !channel.isOpen || (this._state !== "connected" && command !== "hello"))
      throw agentError.notConnected(this.lastError ?? this._state);
    const id = `h${++this.seq}`;
    const raw = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(agentError.timeout(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      try {
        channel.send({ type: command, request_id: id, data });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(
          err instanceof FrameTooLargeError
            ? new AppError("AGENT_REQUEST_TOO_LARGE", err.message, { status: 413 })
            : agentError.notConnected((err as Error).message),
        );
      }
    });
    const parsed = RESPONSE_SCHEMAS[command].safeParse(raw ?? {});
    if (!parsed.success) throw agentError.badResponse(command, issues(parsed.error));
    return parsed.data as T;
  }

  private async connectLoop(): Promise<void> {
    while (this._state !== "stopped") {
      this._state = "connecting";
      try {
        await this.connect();
        return; // disconnect handler schedules the next loop
      } catch (err) {
        if ((this._state as AgentState) === "stopped") return;
        this.lastError = (err as Error).message;
        const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(this.attempt, 16));
        const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
        this.attempt++;
        this.opts.log.debug("agent connect failed; retrying", { socket: this.opts.socketPath, error: this.lastError, inMs: jittered });
        this._state = "backoff";
        await new Promise<void>((r) => (this.retryTimer = setTimeout(r, jittered)));
        this.retryTimer = null;
      }
    }
  }

  private connect(): Promise<HelloResponse> {
    return new Promise<HelloResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.teardown(err.message);
        reject(err);
      };
      const timer = setTimeout(
        () => fail(agentError.notConnected(`no handshake within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      const sock = net.createConnection({ path: this.opts.socketPath });
      this.stream = sock;
      // Kept for the socket's life: a second error (e.g. a reset under TLS) must not go unhandled.
      sock.on("error", (err) => fail(agentError.notConnected(err.message)));
      const ready = (stream: Duplex) => {
        this.stream = stream;
        const channel: FramedChannel = new FramedChannel(stream, {
          log: this.opts.log,
          maxFrameBytes: this.opts.maxFrameBytes,
          onMessage: (m) => {
            if (m.kind === "response") this.onResponse(m.msg);
            else if (m.kind === "event") this.onEvent(m.msg);
            else this.opts.log.warn("agent sent a request to the host; ignored", { type: m.msg.type });
          },
          onClose: (reason) => {
            if (!settled) fail(agentError.notConnected(reason));
            else if (this.channel === channel) this.onDisconnect(reason);
          },
        });
        this.channel = channel;
        this.request<HelloResponse>("hello", { protocol: PROTOCOL_VERSION, host: this.opts.hostName ?? "neuron-appliance" }, this.connectTimeoutMs)
          .then((hello) => {
            if (settled) return;
            if (hello.protocol !== PROTOCOL_VERSION) {
              fail(new AppError("AGENT_PROTOCOL_MISMATCH", `guest agent speaks protocol ${hello.protocol}, host speaks ${PROTOCOL_VERSION}`, { status: 502 }));
              return;
            }
            settled = true;
            clearTimeout(timer);
            this._state = "connected";
            this._hello = hello;
            this.attempt = 0;
            this.lastError = null;
            this.opts.log.info("guest agent connected", { socket: this.opts.socketPath, agent: hello.agent_version, os: hello.os });
            this.emit("connected", hello);
            resolve(hello);
          })
          .catch((err: Error) => fail(err));
      };
      sock.once("connect", () => {
        const nonce = newNonce();
        sock.write(hostPreamble(nonce));
        void readUntilPreamble(sock, { answerFor: nonce, maxDiscard: MAX_STALE_BYTES }).then((found) => {
          if (!found) return fail(agentError.notConnected("the port closed (or sent only stale bytes) before the agent answered the preamble"));
          if (settled) return found.stream.destroy();
          this.stream = found.stream;
          startTls(found.stream);
        });
      });
      const startTls = (stream: Duplex) => {
        if (!this.opts.tls) return ready(stream);
        stream.on("error", () => {}); // surfaces through the TLS socket
        const t = tls.connect({
          socket: stream,
          ca: this.opts.tls.ca,
          cert: this.opts.tls.cert,
          key: this.opts.tls.key,
          rejectUnauthorized: true,
          minVersion: "TLSv1.3",
          // Trust is the per-VM CA, which signs only this VM's two certificates.
          checkServerIdentity: () => undefined,
        });
        t.on("error", (err) => fail(new AppError("AGENT_TLS_FAILED", `TLS with the guest agent failed: ${err.message}`, { status: 502 })));
        t.once("secureConnect", () => ready(t));
      };
    });
  }

  private onResponse(msg: ResponseEnvelope): void {
    const p = this.pending.get(msg.request_id);
    if (!p) {
      this.opts.log.warn("agent response for an unknown request id dropped", { request_id: msg.request_id });
      return;
    }
    this.pending.delete(msg.request_id);
    clearTimeout(p.timer);
    if (msg.success) p.resolve(msg.data);
    else p.reject(agentError.failed(p.command, msg.error?.code ?? "ERROR", msg.error?.message ?? "no message"));
  }

  private onEvent(msg: EventEnvelope): void {
    const parsed = EVENT_SCHEMAS[msg.type].safeParse(msg.data ?? {});
    if (!parsed.success) {
      this.opts.log.error("agent event dropped", { event: msg.type, reason: issues(parsed.error) });
      return;
    }
    this.emit("event", { type: msg.type, data: parsed.data });
    this.emit(msg.type, parsed.data);
  }

  private onDisconnect(reason: string): void {
    const wasConnected = this._state === "connected";
    this.teardown(reason);
    if (wasConnected) {
      this.opts.log.info("guest agent disconnected", { socket: this.opts.socketPath, reason });
      this.emit("disconnected", reason);
    }
    if (this._state !== "stopped") {
      this.lastError = reason;
      this._state = "backoff";
      this.attempt = 0;
      void this.connectLoop();
    }
  }

  private teardown(reason: string): void {
    const ch = this.channel;
    const st = this.stream;
    this.channel = null;
    this.stream = null;
    this._hello = null;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(agentError.notConnected(reason));
      this.pending.delete(id);
    }
    ch?.close();
    st?.destroy();
  }
}
