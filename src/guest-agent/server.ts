/**
 * The in-guest agent service: serves one host session at a time over a byte
 * stream (the virtio-serial port, or a socket in tests), as the TLS server
 * that requires the host's certificate; dispatches commands to the OS
 * backend; pushes events (clipboard changed, resolution changed, app exited).
 */
import { createHash } from "node:crypto";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import type { Logger } from "../log.ts";
import { FramedChannel } from "../guest/channel.ts";
import type { TlsMaterial } from "../guest/certs.ts";
import { FrameTooLargeError } from "../guest/framing.ts";
import { guestAnswer, readUntilPreamble } from "../guest/preamble.ts";
import {
  CommandName,
  issues,
  PROTOCOL_VERSION,
  REQUEST_SCHEMAS,
  type ClipboardContent,
  type Display,
  type EventName,
  type RequestEnvelope,
} from "../guest/model.ts";
import { AGENT_VERSION, GuestCommandError, type OsBackend } from "./os.ts";
import type { GamepadAttach, GamepadDetach, GamepadState } from "../guest/gamepad-model.ts";
import { GamepadHub, VigemUnavailableDriver } from "./gamepad.ts";
import { UserFiles } from "./files.ts";
import { decodeBase64, encodeBase64, type HidCreate, type HidDestroy, type HidInput } from "../guest/hid-model.ts";
import { HidHub, HidUnavailableDriver } from "./uhid.ts";

export interface AgentServerOptions {
  backend: OsBackend;
  tls: TlsMaterial | null;
  log: Logger;
  maxFrameBytes?: number;
  /** Poll interval for clipboard/display changes; 0 disables polling. */
  pollMs?: number;
  /** Virtual gamepads (default: none can be created). */
  gamepads?: GamepadHub;
  /** Virtual HID devices (default: none can be created). */
  hid?: HidHub;
  /** The users' folder served read-only to data migration (fs_* commands); default: none. */
  usersDir?: string | null;
}

export function clipboardHash(c: ClipboardContent): string {
  const h = createHash("sha256").update(c.mime);
  if (c.mime === "text/plain") h.update(c.text);
  else if (c.mime === "image/png") h.update(c.data);
  return h.digest("hex");
}

const displayKey = (name: string, width: number, height: number) => `${name} ${width}x${height}`;

export class AgentServer {
  private channel: FramedChannel | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private polling = false;
  private lastClipboard: string | null = null;
  private lastDisplays: string | null = null;
  /** Bumped by host-made changes: a poll that raced with one discards what it read. */
  private clipboardGen = 0;
  private displayGen = 0;
  private clipboardWrites = 0;
  private displayWrites = 0;
  private children = new Set<number>();
  private stopped = false;

  private readonly gamepads: GamepadHub;
  private readonly hid: HidHub;
  private readonly files: UserFiles;

  constructor(private readonly opts: AgentServerOptions) {
    this.files = new UserFiles(opts.usersDir ?? null);
    this.gamepads = opts.gamepads ?? new GamepadHub(new VigemUnavailableDriver());
    this.gamepads.onRumble = (r) => this.emitEvent("gamepad_rumble", r);
    this.hid = opts.hid ?? new HidHub(new HidUnavailableDriver("this agent was started without virtual HID devices"));
    this.hid.onOutput = (id, data) => this.emitEvent("hid_output", { id, data: encodeBase64(data) });
  }

  /** Starts change polling (call once). */
  start(): void {
    const ms = this.opts.pollMs ?? 0;
    if (ms > 0) this.pollTimer = setInterval(() => void this.poll(), ms);
  }

  stop(): void {
    this.stopped = true;
    this.gamepads.detachAll();
    this.hid.destroyAll();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.channel?.close();
  }

  /** Bytes held for the current session's incomplete frame. */
  get bufferedBytes(): number {
    return this.channel?.buffered ?? 0;
  }

  get connected(): boolean {
    return this.channel?.isOpen ?? false;
  }

  /**
   * Serves one host session on `stream`; resolves when it ends. A new session
   * replaces the previous one (the host reconnected).
   */
  async serve(raw: Duplex): Promise<string> {
    raw.on("error", () => {}); // failures surface through the TLS socket / channel
    const found = await readUntilPreamble(raw, { onDiscard: (bytes) => this.opts.log.warn("bytes before the session preamble discarded", { bytes }) });
    if (!found) return "stream ended before the session preamble";
    // The answer carries the host's nonce: the host skips whatever earlier sessions left in the pipe up to it.
    raw.write(guestAnswer(found.nonce));
    const stream = found.stream;
    return new Promise<string>((resolve) => {
      const attach = (s: Duplex) => {
        this.channel?.close();
        const channel: FramedChannel = new FramedChannel(s, {
          log: this.opts.log,
          maxFrameBytes: this.opts.maxFrameBytes,
          onMessage: (m) => {
            if (m.kind === "request") void this.handle(channel, m.msg);
            else this.opts.log.warn("unexpected message from the host dropped", { kind: m.kind });
          },
          onClose: (reason) => {
            if (this.channel === channel) {
              this.channel = null;
              // The host is gone: its pads and HID devices must not stay held (a stuck stick, key or button).
              this.gamepads.detachAll();
              this.hid.destroyAll();
            }
            resolve(reason);
          },
        });
        this.channel = channel;
      };
      if (!this.opts.tls) return attach(stream);
      stream.on("error", () => {});
      const t = new tls.TLSSocket(stream, {
        isServer: true,
        ca: this.opts.tls.ca,
        cert: this.opts.tls.cert,
        key: this.opts.tls.key,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      });
      let secure = false;
      t.once("secure", () => {
        secure = true;
        const peer = t.getPeerCertificate();
        this.opts.log.info("host session established", { peer: peer?.subject?.CN });
        attach(t);
      });
      t.on("error", (err: Error) => {
        if (!secure) {
          failed = true;
          this.opts.log.error("TLS handshake with the host failed", { error: err.message });
          t.destroy();
          resolve(`TLS failed: ${err.message}`);
        }
      });
      let failed = false;
      const closedEarly = () => {
        if (secure || failed) return;
        failed = true;
        this.opts.log.error("TLS handshake with the host failed", { error: "the host closed the connection during the handshake" });
        t.destroy();
        resolve("closed before the TLS handshake");
      };
      t.once("close", closedEarly);
      // A TLS socket over a generic stream does not always see the stream end: watch the raw one too.
      raw.once("end", closedEarly);
      raw.once("close", closedEarly);
    });
  }

  /** Pushes an event to the connected host, if any. */
  emitEvent(type: EventName, data: unknown): void {
    const ch = this.channel;
    if (!ch?.isOpen) return;
    try {
      ch.send({ type, data });
    } catch (err) {
      this.opts.log.error("event not sent", { event: type, error: (err as Error).message });
    }
  }

  private reply(ch: FramedChannel, id: string, result: { data: unknown } | { code: string; message: string }): void {
    if (!ch.isOpen) return;
    const msg =
      "data" in result
        ? { request_id: id, success: true, data: result.data, error: null }
        : { request_id: id, success: false, data: null, error: { code: result.code, message: result.message.slice(0, 4096) } };
    try {
      ch.send(msg);
    } catch (err) {
      if (err instanceof FrameTooLargeError) ch.send({ request_id: id, success: false, data: null, error: { code: "RESPONSE_TOO_LARGE", message: err.message } });
      else throw err;
    }
  }

  private async handle(ch: FramedChannel, req: RequestEnvelope): Promise<void> {
    const name = CommandName.safeParse(req.type);
    if (!name.success) return this.reply(ch, req.request_id, { code: "UNKNOWN_COMMAND", message: `unknown command ${JSON.stringify(req.type.slice(0, 64))}` });
    const data = REQUEST_SCHEMAS[name.data].safeParse(req.data ?? {});
    if (!data.success) return this.reply(ch, req.request_id, { code: "INVALID_ARGUMENT", message: issues(data.error) });
    try {
      const result = await this.execute(name.data, data.data);
      this.reply(ch, req.request_id, { data: result });
    } catch (err) {
      const code = err instanceof GuestCommandError ? err.errorCode : "INTERNAL";
      if (!(err instanceof GuestCommandError)) this.opts.log.error("command failed", { command: name.data, error: (err as Error).message });
      this.reply(ch, req.request_id, { code, message: (err as Error).message });
    }
  }

  private async execute(cmd: CommandName, data: unknown): Promise<unknown> {
    const b = this.opts.backend;
    switch (cmd) {
      case "hello":
        return { protocol: PROTOCOL_VERSION, agent_version: AGENT_VERSION, os: process.platform };
      case "ping":
        return { pong: true, time: Date.now() };
      case "get_info":
        return b.info();
      case "set_resolution": {
        this.displayGen++;
        this.displayWrites++;
        const r = await b.setResolution(data as Parameters<OsBackend["setResolution"]>[0]).finally(() => (this.displayGen++, this.displayWrites--));
        // Like the clipboard: a change the host made is not reported back to it.
        this.lastDisplays = displayKey(r.display, r.width, r.height);
        this.displayGen++;
        return r;
      }
      case "launch_app":
        return this.launch(data as { path: string; args: string[]; cwd?: string });
      case "clipboard_get":
        return b.clipboardGet();
      case "clipboard_set": {
        const content = data as ClipboardContent;
        this.clipboardGen++;
        this.clipboardWrites++;
        await b.clipboardSet(content).finally(() => (this.clipboardGen++, this.clipboardWrites--));
        // Loop suppression: what the host set is not reported back as a guest change.
        this.lastClipboard = clipboardHash(content);
        this.clipboardGen++;
        return {};
      }
      case "screenshot":
        return b.screenshot();
      case "shutdown":
        b.shutdown((data as { mode: "poweroff" | "reboot" }).mode);
        return {};
      case "gamepad_attach": {
        const a = data as GamepadAttach;
        return this.gamepads.attach(a.index, a.kind);
      }
      case "gamepad_state":
        this.gamepads.state(data as GamepadState);
        return {};
      case "gamepad_detach":
        this.gamepads.detach((data as GamepadDetach).index);
        return {};
      case "hid_create":
        return this.hid.create(data as HidCreate);
      case "hid_input": {
        const d = data as HidInput;
        this.hid.input(d.id, d.reports.map(decodeBase64));
        return {};
      }
      case "hid_destroy":
        this.hid.destroy((data as HidDestroy).id);
        return {};
      case "fs_profiles":
        return this.files.profiles();
      case "fs_list": {
        const d = data as { path: string; cursor: number; limit: number };
        return this.files.list(d.path, d.cursor, d.limit);
      }
      case "fs_read": {
        const d = data as { path: string; offset: number; length: number };
        return this.files.read(d.path, d.offset, d.length);
      }
      case "fs_hash":
        return this.files.hash((data as { path: string }).path);
    }
  }

  private launch(req: { path: string; args: string[]; cwd?: string }): { pid: number } {
    let proc: Bun.Subprocess;
    try {
      proc = Bun.spawn([req.path, ...req.args], { cwd: req.cwd, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    } catch (err) {
      throw new GuestCommandError("LAUNCH_FAILED", `cannot start ${req.path}: ${(err as Error).message}`);
    }
    const pid = proc.pid;
    this.children.add(pid);
    void proc.exited.then((code) => {
      this.children.delete(pid);
      this.emitEvent("app_exited", { pid, code: proc.signalCode ? null : code, signal: proc.signalCode ?? null });
    });
    return { pid };
  }

  /** One polling round: clipboard and displays, events on change. */
  async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      const clipGen = this.clipboardGen;
      const clip = await this.opts.backend.clipboardGet().catch(() => null);
      if (clip && clipGen === this.clipboardGen && this.clipboardWrites === 0) {
        const h = clipboardHash(clip);
        if (this.lastClipboard !== null && h !== this.lastClipboard && clip.mime !== "empty") this.emitEvent("clipboard_changed", clip);
        this.lastClipboard = h;
      }
      const dispGen = this.displayGen;
      const displays = await this.opts.backend.displays().catch(() => [] as Display[]);
      const primary = displays.find((d) => d.primary);
      const key = primary ? displayKey(primary.name, primary.width, primary.height) : "";
      if (dispGen === this.displayGen && this.displayWrites === 0) {
        if (this.lastDisplays !== null && key !== this.lastDisplays && primary) this.emitEvent("resolution_changed", primary);
        this.lastDisplays = key;
      }
    } finally {
      this.polling = false;
    }
  }
}
