/**
 * The VM input API against a real QEMU: POST inject-input and the input WebSocket, checked
 * in QEMU's own input_event_* trace (what its input layer received, in order). Hostile
 * batches are refused whole and send nothing; a WebSocket that ends releases what it held.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { startServer, type RunningServer } from "../../src/api/server.ts";
import { concat, encodeRecord } from "../../src/input/ws-codec.ts";
import { asRoot, overTcp } from "../helpers/api.ts";
import { tempDir, testCore } from "../helpers/env.ts";
import { qemuAvailable, startQemu, waitFor, type TestQemu, type TraceEvent } from "./qemu.ts";

const skip = qemuAvailable() ? undefined : "qemu-system-x86_64 is not installed";

describe.skipIf(skip !== undefined)("inject-input and the input WebSocket into a real QEMU", () => {
  const dir = tempDir("neuron-inject-");
  const qmpDir = join(dir.path, "qmp");
  let vm: TestQemu;
  let ctx: ReturnType<typeof testCore>;
  let app: ReturnType<typeof createApp>;
  let server: RunningServer;
  let admin: string;
  let reader: string;

  beforeAll(async () => {
    mkdirSync(qmpDir, { recursive: true });
    vm = await startQemu(qmpDir, "vm1");
    ctx = testCore({ qmpDir, port: 0, gamestreamEnabled: false, input: { frameMs: 8 } });
    app = createApp(ctx.core);
    server = await startServer(ctx.core);
    admin = ctx.core.auth.createToken("input-admin", "admin", "test").token;
    reader = ctx.core.auth.createToken("input-reader", "read", "test").token;
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    ctx?.cleanup();
    await vm?.stop();
    dir.cleanup();
  });

  const post = (body: unknown, name = "vm1") =>
    app.handle(asRoot(new Request(`http://localhost/api/v1/vms/${name}/inject-input`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) })));
  const inputs = (): TraceEvent[] => vm.trace().filter((e) => e.ev !== "sync");

  test("a batch arrives in order: keys by HID usage, motion, buttons, wheel, text by the layout", async () => {
    const before = inputs().length;
    const res = await post({
      events: [
        { type: "key", usage: 0xe0, down: true },
        { type: "key", usage: 0x04, down: true },
        { type: "key", usage: 0x04, down: false },
        { type: "key", usage: 0xe0, down: false },
        { type: "key", usage: 0xe9, page: 12, down: true },
        { type: "key", usage: 0xe9, page: 12, down: false },
        { type: "move", dx: 5, dy: -3 },
        { type: "move", dx: 2, dy: 1 },
        { type: "button", button: 4, down: true },
        { type: "button", button: 4, down: false },
        { type: "wheel", dy: 120 },
        { type: "abs", x: 32767, y: 0 },
        { type: "text", text: "Hi" },
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; sinks: Record<string, string | null> };
    expect(body.accepted).toBe(13);
    // no guest driver runs here: QEMU routes keys and relative motion to the i8042
    expect(body.sinks).toMatchObject({ keyboard: "ps2", pointer: "ps2", absolute: "virtio" });
    await waitFor(() => inputs().length >= before + 20, 5000, "QEMU to trace the batch");
    expect(inputs().slice(before)).toEqual([
      { ev: "key", qcode: "ctrl", down: true },
      { ev: "key", qcode: "a", down: true },
      { ev: "key", qcode: "a", down: false },
      { ev: "key", qcode: "ctrl", down: false },
      { ev: "key", qcode: "volumeup", down: true },
      { ev: "key", qcode: "volumeup", down: false },
      // two moves coalesced into one
      { ev: "rel", axis: "x", value: 7 },
      { ev: "rel", axis: "y", value: -2 },
      { ev: "btn", button: "side", down: true },
      { ev: "btn", button: "side", down: false },
      { ev: "btn", button: "wheel-up", down: true },
      { ev: "btn", button: "wheel-up", down: false },
      { ev: "abs", axis: "x", value: 32767 },
      { ev: "abs", axis: "y", value: 0 },
      { ev: "key", qcode: "shift", down: true },
      { ev: "key", qcode: "h", down: true },
      { ev: "key", qcode: "h", down: false },
      { ev: "key", qcode: "shift", down: false },
      { ev: "key", qcode: "i", down: true },
      { ev: "key", qcode: "i", down: false },
    ]);
  });

  test("text is typed by the guest's layout (German: z and y swap, @ is AltGr+q)", async () => {
    const before = inputs().length;
    expect((await post({ events: [{ type: "text", text: "zy@", layout: "de" }] })).status).toBe(200);
    await waitFor(() => inputs().length >= before + 8, 5000, "the text");
    expect(inputs().slice(before)).toEqual([
      { ev: "key", qcode: "y", down: true },
      { ev: "key", qcode: "y", down: false },
      { ev: "key", qcode: "z", down: true },
      { ev: "key", qcode: "z", down: false },
      { ev: "key", qcode: "alt_r", down: true },
      { ev: "key", qcode: "q", down: true },
      { ev: "key", qcode: "q", down: false },
      { ev: "key", qcode: "alt_r", down: false },
    ]);
  });

  test("hostile batches get 422 and send nothing: unknown codes, NaN, out-of-range axes, a million events on every transport", async () => {
    const before = vm.trace().length;
    const many = Array.from({ length: 2000 }, () => ({ type: "move", dx: 1, dy: 1 }));
    const cases: [unknown, number][] = [
      [{ events: [{ type: "key", usage: 0x04, down: true }, { type: "key", usage: 0xffff, down: true }] }, 422], // unknown code
      [{ events: [{ type: "key", usage: 0x04, down: true }, { type: "key", usage: 0x04, page: 9, down: true }] }, 422], // unknown page
      [{ events: [{ type: "move", dx: 1, dy: 1 }, { type: "abs", x: 40000, y: 1 }] }, 422], // out of range
      [{ events: [{ type: "move", dx: "NaN", dy: 1 }] }, 422],
      ['{"events":[{"type":"move","dx":1e400,"dy":1}]}', 422], // Infinity after JSON.parse
      [{ events: [{ type: "move", dx: 1.5, dy: 1 }] }, 422],
      [{ events: [{ type: "warp", x: 1 }] }, 422],
      [{ events: [{ type: "move", dx: 1, dy: 1, extra: true }] }, 422],
      [{ events: [] }, 422],
      [{ events: many }, 422], // over the 1024-event bound
      [{ events: [{ type: "key", usage: 4, down: true }, { type: "text", text: "a€☃" }] }, 422], // the US layout cannot type ☃
      [{ events: [{ type: "gamepadMotion", pad: 0, sensor: "gyro", x: 1, y: 1, z: 5000 }] }, 422],
    ];
    for (const [body, status] of cases) {
      const res = await post(body);
      expect({ body: JSON.stringify(body).slice(0, 80), status: res.status }).toEqual({ body: JSON.stringify(body).slice(0, 80), status });
    }
    // a million events (~30 MB): refused by its size before it is read or parsed, with 422 like any bad batch
    const million = `{"events":[${'{"type":"move","dx":1,"dy":1},'.repeat(999_999)}{"type":"move","dx":1,"dy":1}]}`;
    const tooLarge = async (res: Response) => ({ status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code });
    const refusal = { status: 422, code: "INPUT_BATCH_TOO_LARGE" };
    expect(await tooLarge(await post(million))).toEqual(refusal);
    const auth = { authorization: `Bearer ${admin}`, "content-type": "application/json" };
    const url = `${server.url}/api/v1/vms/vm1/inject-input`;
    // over TCP with its length declared, over TCP chunked (no length), and over the local socket
    expect(await tooLarge(await fetch(url, { method: "POST", headers: auth, body: million }))).toEqual(refusal);
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 64; i++) c.enqueue(new TextEncoder().encode(million.slice(i * 500_000, (i + 1) * 500_000)));
        c.close();
      },
    });
    expect(await tooLarge(await fetch(url, { method: "POST", headers: auth, body: chunked, duplex: "half" } as RequestInit))).toEqual(refusal);
    expect(await tooLarge(await fetch("http://localhost/api/v1/vms/vm1/inject-input", { unix: server.socketPath, method: "POST", headers: { "content-type": "application/json" }, body: million }))).toEqual(refusal);
    // within the size bound but past the JSON value limits: 422 too
    const values = `{"events":[${"[" .repeat(40)}1${"]".repeat(40)}]}`;
    expect((await post(values)).status).toBe(422);
    // other routes keep the plain body limit
    expect((await fetch(`${server.url}/api/v1/apps`, { method: "POST", headers: auth, body: million })).status).toBe(413);
    await Bun.sleep(100);
    expect(vm.trace().length).toBe(before);
  }, 30_000);

  test("a VM without a QMP socket is 409; a bad name 422; a read token may not inject", async () => {
    expect((await post({ events: [{ type: "move", dx: 1, dy: 1 }] }, "nosuchvm")).status).toBe(409);
    expect((await post({ events: [{ type: "move", dx: 1, dy: 1 }] }, "bad%20name")).status).toBe(422);
    const ro = await app.handle(
      overTcp(new Request("http://localhost/api/v1/vms/vm1/inject-input", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${reader}` }, body: '{"events":[{"type":"move","dx":1,"dy":1}]}' })),
    );
    expect(ro.status).toBe(403);
  });

  test("input-sinks says which device serves each class, why, and its stealth", async () => {
    const res = await app.handle(asRoot(new Request("http://localhost/api/v1/vms/vm1/input-sinks")));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { sinks: { eventClass: string }[] };
    const kb = body.sinks.find((s: { eventClass: string }) => s.eventClass === "keyboard");
    // the guest runs no driver: QEMU routes keys to the i8042 until a virtio driver starts
    expect(kb).toMatchObject({ sink: "ps2", stealth: 3, available: expect.arrayContaining(["ps2", "virtio"]) });
    expect(body.sinks.find((s: { eventClass: string }) => s.eventClass === "absolute")).toMatchObject({ sink: "virtio", device: "QEMU Virtio Tablet", stealth: 0 });
    expect(body.sinks.find((s: { eventClass: string }) => s.eventClass === "gamepad")).toMatchObject({ sink: expect.anything() });
  });

  test("a stream session's backend shares the VM's hub (one QMP connection): its keys arrive; its end releases only its own", async () => {
    const session = await ctx.core.input.sessionBackend("vm1");
    const before = inputs().length;
    // the API holds d; the session holds the GameStream VK for e
    expect((await post({ events: [{ type: "key", usage: 0x07, down: true }] })).status).toBe(200);
    session.submit([{ kind: "key", down: true, vk: 0x45, keyCode: 0x45, modifiers: 0, flags: 0 }]);
    await session.flush();
    await session.close();
    await waitFor(() => inputs().length >= before + 3, 5000, "the session's keys");
    expect(inputs().slice(before)).toEqual([
      { ev: "key", qcode: "d", down: true },
      { ev: "key", qcode: "e", down: true },
      { ev: "key", qcode: "e", down: false },
    ]);
    expect((await post({ events: [{ type: "key", usage: 0x07, down: false }] })).status).toBe(200);
  });

  async function openSocket(headers: Record<string, string>): Promise<{ ws: WebSocket; messages: string[]; closed: Promise<number> }> {
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/api/v1/vms/vm1/input`, { headers } as unknown as string[]);
    const messages: string[] = [];
    ws.binaryType = "arraybuffer";
    ws.onmessage = (m) => messages.push(String(m.data));
    const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("WebSocket did not open")), 5000);
      ws.onopen = () => (clearTimeout(t), resolve());
      ws.onerror = () => (clearTimeout(t), reject(new Error("WebSocket refused")));
    });
    return { ws, messages, closed };
  }

  test("the WebSocket takes binary records and JSON; a bad message sends nothing; closing releases held keys and buttons", async () => {
    const { ws, messages, closed } = await openSocket({ authorization: `Bearer ${admin}` });
    await waitFor(() => messages.length > 0, 5000, "ready");
    expect(JSON.parse(messages[0]!)).toMatchObject({ type: "ready", sinks: { absolute: "virtio" } });
    const before = inputs().length;
    ws.send(concat([encodeRecord.key(0x05, true), encodeRecord.button(1, true), encodeRecord.move(3, 4)]));
    ws.send(JSON.stringify({ events: [{ type: "key", usage: 0x06, down: true }] }));
    await waitFor(() => inputs().length >= before + 5, 5000, "the records");
    expect(inputs().slice(before)).toEqual([
      { ev: "key", qcode: "b", down: true },
      { ev: "btn", button: "left", down: true },
      { ev: "rel", axis: "x", value: 3 },
      { ev: "rel", axis: "y", value: 4 },
      { ev: "key", qcode: "c", down: true },
    ]);
    // hostile: unknown type byte after a good record, truncated record, NaN, bad usage
    const mid = inputs().length;
    const nan = encodeRecord.move(0, 0);
    const badKey = encodeRecord.key(0xfff0, true);
    const motion = new Uint8Array(16);
    motion.set([0x13, 0, 1, 0]);
    new DataView(motion.buffer).setFloat32(4, Number.NaN, true);
    for (const bad of [concat([encodeRecord.key(0x07, true), new Uint8Array([0x7f, 0, 0, 0, 0, 0, 0, 0])]), concat([encodeRecord.key(0x07, true), nan.subarray(0, 5)]), motion, badKey]) ws.send(bad);
    ws.send('{"events":[{"type":"abs","x":-1,"y":0}]}');
    await waitFor(() => messages.filter((m) => m.includes('"error"')).length >= 5, 5000, "5 errors");
    expect(messages.filter((m) => m.includes('"error"')).map((m) => JSON.parse(m).code)).toEqual(Array(5).fill("INPUT_INVALID"));
    expect(inputs().length).toBe(mid);
    // the end: b, c and the left button were held
    ws.close();
    await closed;
    await waitFor(() => inputs().length >= mid + 3, 5000, "the releases");
    expect(new Set(inputs().slice(mid).map((e) => JSON.stringify(e)))).toEqual(
      new Set([{ ev: "key", qcode: "b", down: false }, { ev: "key", qcode: "c", down: false }, { ev: "btn", button: "left", down: false }].map((e) => JSON.stringify(e))),
    );
  }, 30_000);

  test("a sink pinned in config: QEMU is made to route relative motion to the pinned mouse", async () => {
    await ctx.core.input.close(); // the VM's monitor serves one client
    const { VmInputService } = await import("../../src/input/vm-input.ts");
    const svc = new VmInputService({
      qmpDir,
      settings: { ...ctx.core.config.input, pins: { vm1: { pointer: "virtio" } } },
      nativePath: () => ctx.core.nativePath!,
      log: ctx.core.log,
    });
    try {
      const r = await svc.probe("vm1");
      expect(r.sinks.find((x) => x.eventClass === "pointer")).toMatchObject({ sink: "virtio", device: "QEMU Virtio Mouse", pinned: { sink: "virtio", honoured: true } });
      const hub = await svc.hub("vm1");
      await hub.qmp.refreshDevices();
      expect(hub.qmp.devices.mice.find((m) => m.current)?.name).toBe("QEMU Virtio Mouse");
    } finally {
      await svc.close();
    }
  });

  test("the WebSocket upgrade goes through the guard: no credentials 401, read scope 403, a foreign Origin 403", async () => {
    const refused = async (headers: Record<string, string>) => {
      const res = await fetch(`${server.url}/api/v1/vms/vm1/input`, { headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", ...headers } });
      return res.status;
    };
    expect(await refused({})).toBe(401);
    expect(await refused({ authorization: `Bearer ${reader}` })).toBe(403);
    expect(await refused({ authorization: `Bearer ${admin}`, origin: "http://evil.example" })).toBe(403);
    // a plain GET is not a WebSocket
    const plain = await fetch(`${server.url}/api/v1/vms/vm1/input`, { headers: { authorization: `Bearer ${admin}` } });
    expect(plain.status).toBe(426);
  });
});
