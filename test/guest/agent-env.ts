/** Scaffolding for agent tests: a guest agent served on a real unix socket, OS commands backed by files. */
import { renameSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import type { TlsMaterial } from "../../src/guest/certs.ts";
import { loadAgentConfig } from "../../src/guest-agent/config.ts";
import { OsBackend } from "../../src/guest-agent/os.ts";
import { AgentServer } from "../../src/guest-agent/server.ts";
import { silentLogger, type Logger } from "../../src/log.ts";

/** Replaces a file in one step (rename), so a concurrent reader never sees a torn mix of old and new bytes. */
export function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

/** A valid 1×1 PNG, built here (signature, IHDR, IDAT, IEND with real CRCs). */
export function tinyPng(): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
  const idat = deflateSync(Buffer.from([0, 255, 0, 0]));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", Buffer.alloc(0))]);
}

/** Guest OS commands that keep the clipboard, displays and power state in files under `dir`. */
export function fileCommands(dir: string) {
  writeFileSync(join(dir, "clip"), "");
  writeFileSync(join(dir, "displays"), "Virtual-1 1280x800 primary\nVirtual-2 1024x768\n");
  writeFileSync(join(dir, "shot.png"), tinyPng());
  return {
    clipboardGetText: ["cat", join(dir, "clip")],
    clipboardSetText: ["sh", "-c", 'cat > "$0"', join(dir, "clip")],
    clipboardGetImage: null,
    clipboardSetImage: ["sh", "-c", 'cat > "$0"', join(dir, "clip.png")],
    displays: ["cat", join(dir, "displays")],
    setResolution: ["sh", "-c", 'printf "%s %sx%s primary\\n" "$0" "$1" "$2" > "$3"', "{display}", "{width}", "{height}", join(dir, "displays")],
    screenshot: ["cat", join(dir, "shot.png")],
    poweroff: ["sh", "-c", 'echo poweroff > "$0"', join(dir, "power")],
    reboot: ["sh", "-c", 'echo reboot > "$0"', join(dir, "power")],
  };
}

export interface ServedAgent {
  agent: AgentServer;
  server: net.Server;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** Serves the guest agent on a unix socket (what QEMU's chardev would carry). */
export async function serveAgent(opts: { socketPath: string; dir: string; tls: TlsMaterial | null; pollMs?: number; log?: Logger; usersDir?: string }): Promise<ServedAgent> {
  const config = loadAgentConfig({ certDir: null, commands: fileCommands(opts.dir) }, "linux", {});
  const agent = new AgentServer({ backend: new OsBackend(config), tls: opts.tls, log: opts.log ?? silentLogger, pollMs: opts.pollMs ?? 0, usersDir: opts.usersDir });
  agent.start();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    void agent.serve(s);
  });
  await new Promise<void>((r) => server.listen(opts.socketPath, r));
  return {
    agent,
    server,
    sockets,
    async close() {
      agent.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A raw unix-socket peer that lets a test write any bytes. */
export async function rawPeer(socketPath: string, onConnection: (s: net.Socket) => void): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function waitFor<T>(fn: () => T | undefined | null | false, timeoutMs = 5000, what = "condition"): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/**
 * Waits until a unix socket accepts a connection (the file appears at bind(),
 * before listen(): a connect in between is refused).
 */
export async function waitForListener(path: string, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createConnection(path);
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

export function captureLogger(): { log: Logger; lines: { level: string; msg: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const make = (ctx: Record<string, unknown>): Logger => ({
    debug: (msg, f) => void lines.push({ level: "debug", msg, fields: { ...ctx, ...f } }),
    info: (msg, f) => void lines.push({ level: "info", msg, fields: { ...ctx, ...f } }),
    warn: (msg, f) => void lines.push({ level: "warn", msg, fields: { ...ctx, ...f } }),
    error: (msg, f) => void lines.push({ level: "error", msg, fields: { ...ctx, ...f } }),
    child: (f) => make({ ...ctx, ...f }),
  });
  return { log: make({}), lines };
}
