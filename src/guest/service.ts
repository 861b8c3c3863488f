/**
 * GuestService: one agent connection per VM, kept up by the service, plus
 * the QEMU guest agent as a fallback for the basics (ping, info, shutdown)
 * when our agent is not (yet) installed. Transport-free: the API routes and
 * the CLI call it.
 */
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { assertVmName, ensureAgentCertificates } from "./certs.ts";
import { AgentClient, type AgentState } from "./client.ts";
import { ClipboardSync, commandClipboard } from "./clipboard.ts";
import { AGENT_PORT_NAME, REQUEST_SCHEMAS, issues, type CommandName, type Display, type GuestInfo, type HelloResponse } from "./model.ts";
import { QgaClient, type QgaOsInfo } from "./qga.ts";
import type { AgentSockets, SocketResolver } from "./resolver.ts";
import type { GuestAgentSettings } from "./settings.ts";

export interface GuestServiceDeps {
  stateDir: string;
  openssl: string;
  settings: GuestAgentSettings;
  resolve: SocketResolver;
  log: Logger;
}

export interface AgentStatus {
  vm: string;
  connected: boolean;
  state: AgentState;
  error: string | null;
  sockets: AgentSockets;
  hello: HelloResponse | null;
  info: GuestInfo | null;
  /** Last resolution the guest reported through resolution_changed. */
  resolution: Display | null;
  qga: { available: boolean; os: QgaOsInfo | null; error: string | null } | null;
}

export interface CommandResult {
  vm: string;
  command: CommandName;
  via: "agent" | "qga";
  data: unknown;
}

interface VmAgent {
  client: AgentClient;
  socket: string;
  resolution: Display | null;
  clipboard: ClipboardSync | null;
  /** Latest requested size while a set_resolution is in flight (coalescing). */
  pendingSize: { width: number; height: number } | null;
  resizing: Promise<unknown> | null;
}

const QGA_FALLBACK: Partial<Record<CommandName, true>> = { ping: true, get_info: true, shutdown: true };

export class GuestService {
  private vms = new Map<string, VmAgent>();

  constructor(private readonly deps: GuestServiceDeps) {}

  /** Status of a VM's agent; starts the connection if needed and waits briefly for it. */
  async status(vm: string): Promise<AgentStatus> {
    assertVmName(vm);
    const sockets = await this.deps.resolve(vm);
    const a = sockets.agent ? await this.ensure(vm, sockets.agent) : null;
    if (a && a.client.state !== "connected") await this.waitConnected(a.client, this.deps.settings.connectWaitMs);
    let info: GuestInfo | null = null;
    let error = a ? a.client.error : `VM ${vm} has no ${AGENT_PORT_NAME} channel`;
    if (a?.client.state === "connected") {
      try {
        info = await a.client.request<GuestInfo>("get_info");
      } catch (err) {
        error = (err as Error).message;
      }
    }
    let qga: AgentStatus["qga"] = null;
    if (sockets.qga) {
      try {
        qga = { available: true, os: await this.withQga(sockets.qga, (q) => q.osInfo()), error: null };
      } catch (err) {
        qga = { available: false, os: null, error: (err as Error).message };
      }
    }
    return {
      vm,
      connected: a?.client.state === "connected",
      state: a?.client.state ?? "idle",
      error: a?.client.state === "connected" ? null : error,
      sockets,
      hello: a?.client.hello ?? null,
      info,
      resolution: a?.resolution ?? null,
      qga,
    };
  }

  /** Runs one command; validated here so a bad request fails before anything is sent. */
  async command(vm: string, command: CommandName, data: unknown): Promise<CommandResult> {
    assertVmName(vm);
    if (command === "hello") throw new AppError("INVALID_INPUT", "hello is part of the connection handshake", { status: 422 });
    const parsed = REQUEST_SCHEMAS[command].safeParse(data ?? {});
    if (!parsed.success) throw new AppError("INVALID_INPUT", `${command}: ${issues(parsed.error)}`, { status: 422 });
    const sockets = await this.deps.resolve(vm);
    const a = sockets.agent ? await this.ensure(vm, sockets.agent) : null;
    if (a && a.client.state !== "connected") await this.waitConnected(a.client, this.deps.settings.connectWaitMs);
    if (a?.client.state === "connected") {
      const out = command === "set_resolution" ? await this.resize(a, parsed.data as { width: number; height: number }) : await a.client.request(command, parsed.data);
      return { vm, command, via: "agent", data: out };
    }
    if (sockets.qga && QGA_FALLBACK[command]) return { vm, command, via: "qga", data: await this.qgaCommand(sockets.qga, command, parsed.data) };
    throw new AppError(
      "AGENT_NOT_CONNECTED",
      `guest agent of ${vm} not connected${a?.client.error ? `: ${a.client.error}` : sockets.agent ? "" : " (the VM has no agent channel)"}`,
      { status: 503 },
    );
  }

  /** Viewer resized: coalesces bursts so only the latest size is applied after the one in flight. */
  async syncResolution(vm: string, size: { width: number; height: number }): Promise<CommandResult> {
    return this.command(vm, "set_resolution", size);
  }

  /**
   * Connects to a VM's agent and keeps the connection (with clipboard sync when
   * host clipboard commands are configured). Returns false when the VM has no agent channel.
   */
  async attach(vm: string): Promise<boolean> {
    assertVmName(vm);
    const sockets = await this.deps.resolve(vm);
    if (!sockets.agent) return false;
    await this.ensure(vm, sockets.agent);
    return true;
  }

  /** The VM's agent client (connection kept and reconnected), or null when the VM has no agent channel. */
  async client(vm: string): Promise<AgentClient | null> {
    assertVmName(vm);
    const sockets = await this.deps.resolve(vm);
    return sockets.agent ? (await this.ensure(vm, sockets.agent)).client : null;
  }

  connectionState(vm: string): AgentState | null {
    return this.vms.get(vm)?.client.state ?? null;
  }

  clipboardPrimed(vm: string): boolean {
    return this.vms.get(vm)?.clipboard?.primed ?? false;
  }

  clipboardStats(vm: string): ClipboardSync["stats"] | null {
    return this.vms.get(vm)?.clipboard?.stats ?? null;
  }

  /** Drops a VM's connection (VM undefined, or its socket changed). */
  forget(vm: string): void {
    const a = this.vms.get(vm);
    if (!a) return;
    a.clipboard?.stop();
    a.client.stop();
    this.vms.delete(vm);
  }

  close(): void {
    for (const vm of [...this.vms.keys()]) this.forget(vm);
  }

  private async ensure(vm: string, socket: string): Promise<VmAgent> {
    const existing = this.vms.get(vm);
    if (existing && existing.socket === socket) return existing;
    if (existing) this.forget(vm);
    const s = this.deps.settings;
    const tls = s.tls ? (await ensureAgentCertificates({ stateDir: this.deps.stateDir, openssl: this.deps.openssl }, vm)).host : null;
    const again = this.vms.get(vm);
    if (again && again.socket === socket) return again;
    const client = new AgentClient({ socketPath: socket, tls, log: this.deps.log.child({ vm }), requestTimeoutMs: s.requestTimeoutMs });
    const entry: VmAgent = { client, socket, resolution: null, clipboard: null, pendingSize: null, resizing: null };
    client.on("resolution_changed", (d: Display) => (entry.resolution = d));
    client.on("error", () => {}); // errors surface through state/error
    const { getCommand, setCommand, pollMs } = s.clipboard;
    if (getCommand && setCommand) {
      entry.clipboard = new ClipboardSync(client, commandClipboard(getCommand, setCommand), this.deps.log.child({ vm }), pollMs);
      entry.clipboard.start();
    }
    this.vms.set(vm, entry);
    client.start();
    return entry;
  }

  private waitConnected(client: AgentClient, ms: number): Promise<void> {
    if (ms <= 0 || client.state === "connected") return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        client.off("connected", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      client.on("connected", done);
    });
  }

  private async resize(a: VmAgent, size: { width: number; height: number; display?: string }): Promise<unknown> {
    // Only the latest size of a burst is applied once the in-flight request finishes.
    a.pendingSize = size;
    while (a.resizing) await a.resizing.catch(() => {});
    if (a.pendingSize !== size) return { superseded: true, width: size.width, height: size.height };
    a.pendingSize = null;
    const p = a.client.request("set_resolution", size);
    a.resizing = p;
    try {
      return await p;
    } finally {
      if (a.resizing === p) a.resizing = null;
    }
  }

  private async withQga<T>(socket: string, fn: (q: QgaClient) => Promise<T>): Promise<T> {
    const q = new QgaClient({ socketPath: socket, timeoutMs: Math.min(this.deps.settings.requestTimeoutMs, 10_000) });
    await q.connect();
    try {
      return await fn(q);
    } finally {
      await q.close();
    }
  }

  private qgaCommand(socket: string, command: CommandName, data: unknown): Promise<unknown> {
    switch (command) {
      case "ping":
        return this.withQga(socket, async (q) => (await q.ping(), { pong: true, time: Date.now() }));
      case "get_info":
        return this.withQga(socket, async (q) => ({ os: await q.osInfo(), agent: await q.info().then((i) => ({ version: i.version })) }));
      case "shutdown":
        return this.withQga(socket, async (q) => (await q.shutdown((data as { mode: string }).mode === "reboot" ? "reboot" : "powerdown"), {}));
      default:
        throw new AppError("NOT_SUPPORTED", `${command} needs the NeuronOS agent`, { status: 501 });
    }
  }
}
