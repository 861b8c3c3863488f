/** NVF1 frame export: the guest agent's exporter → the native listener over a unix socket; AF_VSOCK where the kernel allows. */
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { resolveNativePath } from "../../ffi/native.ts";
import { VsockNative, FRAME_H264_AU } from "../../ffi/vsock.ts";
import { SocketFrameSource } from "../../src/capture/socket-source.ts";
import { CaptureError } from "../../src/capture/source.ts";
import { encodeFrameHeader, encodeHello, fillPattern } from "../../src/guest-agent/frame-export.ts";
import { frameSourceContract, type ContractFixture } from "./source-contract.ts";
import { CapturePipeline } from "../../ffi/capture.ts";
import { loadCaptureNative, collectAccessUnits } from "./helpers.ts";
import { probeStream } from "./ffmpeg.ts";

const native = new VsockNative(resolveNativePath({}));
afterAll(() => native.close());

let seq = 0;
const sockPath = (tag: string) => `/tmp/neuron-nvf-${tag}-${process.pid}-${++seq}.sock`;

/** The guest agent's exporter in its own process (the source's next() blocks this thread). */
function spawnExporter(path: string, args: string[] = []) {
  const proc = Bun.spawn(
    [process.execPath, `${import.meta.dir}/../../src/guest-agent/main.ts`, "export-frames", "--unix", path, "--width", "320", "--height", "240", "--fps", "120", ...args],
    { stdout: "ignore", stderr: "pipe" },
  );
  return {
    proc,
    async stop() {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await proc.exited;
      clearTimeout(t);
    },
  };
}

function fixture(tag: string, args: string[] = []): ContractFixture {
  const path = sockPath(tag);
  const source = new SocketFrameSource(native, { kind: "unix", path });
  const exporter = spawnExporter(path, args);
  let stopped = false;
  return {
    source,
    width: 320,
    height: 240,
    async stopProducer() {
      stopped = true;
      await exporter.stop();
    },
    async cleanup() {
      if (!stopped) await exporter.stop();
      source.close();
    },
  };
}

frameSourceContract("unix socket (NVF1)", async () => fixture("contract"));
frameSourceContract("unix socket (NVF1, padded stride)", async () => fixture("stride", ["--row-padding", "64"]));

/** Writes raw bytes to the listener from this process (the listener is a native thread). */
async function send(path: string, chunks: Uint8Array[]): Promise<void> {
  const s = connect({ path });
  await new Promise<void>((res, rej) => {
    s.once("connect", res);
    s.once("error", rej);
  });
  for (const c of chunks) s.write(c);
  await new Promise<void>((res) => s.end(res));
}

describe("NVF1 over a unix socket", () => {
  test("the exporter's pixels arrive intact, with its timestamp", async () => {
    const f = fixture("pixels", ["--row-padding", "16"]);
    const src = f.source as SocketFrameSource;
    try {
      src.attach(5000);
      expect(src.hello()).toMatchObject({ codec: "raw", width: 320, height: 240, fps: 120, valid: true });
      const buf = new Uint8Array(320 * 240 * 4);
      const want = new Uint8Array(buf.length);
      let got = 0;
      for (let i = 0; i < 100 && got < 3; i++) {
        const ev = src.next(buf, 500);
        if (ev.kind !== "frame") continue;
        const n = new DataView(buf.buffer).getUint32(0, true);
        fillPattern(want, 320, 240, 320 * 4, n);
        expect(Buffer.compare(buf, want)).toBe(0);
        expect(ev.info.outPitch).toBe(320 * 4);
        expect(src.lastTimestampUs).toBeGreaterThan(0);
        got++;
      }
      expect(got).toBe(3);
    } finally {
      await f.cleanup();
    }
  });

  test("hostile framing is refused with the reason; the listener takes the next guest", async () => {
    const path = sockPath("hostile");
    const src = new SocketFrameSource(native, { kind: "unix", path });
    const buf = new Uint8Array(64 * 64 * 4);
    const hello = encodeHello({ width: 64, height: 64, fps: 60, maxPayload: 64 * 64 * 4 });
    const cases: [string, Uint8Array[], string][] = [
      ["stride < width", [hello, encodeFrameHeader({ serial: 1, timestampUs: 1, stride: 100, payloadSize: 6400 })], "stride 100 is less than width 64 x 4"],
      ["lying size", [hello, encodeFrameHeader({ serial: 1, timestampUs: 1, stride: 256, payloadSize: 1 << 30 })], "payload"],
      ["damage outside", [hello, encodeFrameHeader({ serial: 1, timestampUs: 1, stride: 256, payloadSize: 16384, damage: [{ x: 60, y: 0, w: 10, h: 1 }] })], "outside 64x64"],
      ["garbage", [new Uint8Array(64).fill(0x41)], "unknown record magic"],
      ["huge mode", [encodeHello({ width: 1 << 20, height: 64, fps: 60, maxPayload: 100 })], "outside 16-16384"],
    ];
    try {
      for (const [name, chunks, reason] of cases) {
        await send(path, chunks);
        // the end of the previous guest's connection and the new guest's hello may each report a restart
        let ev = src.next(buf, 2000);
        for (let i = 0; i < 3 && ev.kind === "restarted"; i++) ev = src.next(buf, 2000);
        expect({ name, kind: ev.kind }).toEqual({ name, kind: "rejected" });
        if (ev.kind === "rejected") expect(ev.reason).toContain(reason);
      }
      // truncated: the header and part of the payload, then the guest goes away
      await send(path, [hello, encodeFrameHeader({ serial: 1, timestampUs: 1, stride: 256, payloadSize: 16384 }), new Uint8Array(1000)]);
      const evs = [src.next(buf, 1000).kind, src.next(buf, 300).kind];
      expect(evs).not.toContain("frame");
      expect(src.lastError()).toContain("truncated frame: the connection ended after 1000 of 16384 payload bytes");
      // a well-formed guest afterwards is served
      const frame = new Uint8Array(16384);
      fillPattern(frame, 64, 64, 256, 7);
      await send(path, [hello, encodeFrameHeader({ serial: 1, timestampUs: 42, stride: 256, payloadSize: 16384 }), frame]);
      let ev = src.next(buf, 2000);
      for (let i = 0; i < 3 && ev.kind === "restarted"; i++) ev = src.next(buf, 2000);
      expect(ev.kind).toBe("frame");
      expect(Buffer.compare(buf, frame)).toBe(0);
      expect(src.stats()).toMatchObject({ frames: 1, rejected: 5, wpTimeouts: 1 });
    } finally {
      src.close();
    }
  });

  test("guest-encoded H.264 access units pass through as sent", async () => {
    const path = sockPath("h264");
    const src = new SocketFrameSource(native, { kind: "unix", path });
    try {
      const au = new Uint8Array([0, 0, 0, 1, 0x65, 1, 2, 3, 4]);
      await send(path, [encodeHello({ width: 64, height: 64, fps: 60, codec: 2, maxPayload: 4096 }), encodeFrameHeader({ serial: 1, timestampUs: 5, stride: 0, payloadSize: au.length, keyframe: true }), au]);
      src.attach(2000);
      const buf = new Uint8Array(4096);
      const ev = src.next(buf, 2000);
      expect(ev.kind).toBe("frame");
      if (ev.kind !== "frame") return;
      expect(ev.info.type).toBe(FRAME_H264_AU);
      expect(ev.info.bytes).toBe(au.length);
      expect(Buffer.compare(buf.subarray(0, au.length), au)).toBe(0);
    } finally {
      src.close();
    }
  });

  test("--device writes the same byte stream (a virtio-serial port in a guest); the listener reads it", async () => {
    const file = `/tmp/neuron-nvf-device-${process.pid}.bin`;
    const p = Bun.spawn([process.execPath, `${import.meta.dir}/../../src/guest-agent/main.ts`, "export-frames", "--device", file, "--width", "64", "--height", "64", "--fps", "200", "--frames", "3"], { stdout: "ignore", stderr: "pipe" });
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    expect(await p.exited).toBe(0);
    clearTimeout(t);
    const bytes = new Uint8Array(await Bun.file(file).arrayBuffer());
    expect(bytes.length).toBe(32 + 3 * (32 + 64 * 64 * 4));
    const path = sockPath("device");
    const src = new SocketFrameSource(native, { kind: "unix", path });
    try {
      await send(path, [bytes]);
      src.attach(2000);
      const buf = new Uint8Array(64 * 64 * 4);
      const serials: number[] = [];
      for (let i = 0; i < 10 && serials.length < 3; i++) {
        const ev = src.next(buf, 500);
        if (ev.kind === "frame") serials.push(ev.info.frameSerial);
      }
      // the reader keeps the newest frame: it may skip, never reorder
      expect(serials.length).toBeGreaterThan(0);
      expect(serials).toEqual([...serials].sort((a, b) => a - b));
      expect(serials.at(-1)).toBe(3);
    } finally {
      src.close();
      Bun.spawnSync(["rm", "-f", file]);
    }
  });

  test("x11 capture through x11grab of a real X server (Xvfb)", async () => {
    if (!Bun.which("Xvfb") || !Bun.which("ffmpeg")) {
      console.warn("skip: x11 export needs Xvfb and ffmpeg (not installed)");
      return;
    }
    const display = `:${90 + (process.pid % 50)}`;
    // a white root window: the captured pixels are the screen's, not an empty buffer
    const x = Bun.spawn(["Xvfb", display, "-screen", "0", "320x240x24", "-nolisten", "tcp", "-wr"], { stdout: "ignore", stderr: "ignore" });
    const path = sockPath("x11");
    const src = new SocketFrameSource(native, { kind: "unix", path });
    let exporter: Bun.Subprocess | null = null;
    try {
      await Bun.sleep(500);
      exporter = Bun.spawn([process.execPath, `${import.meta.dir}/../../src/guest-agent/main.ts`, "export-frames", "--mode", "x11", "--unix", path, "--width", "320", "--height", "240", "--fps", "30"], {
        env: { ...process.env, DISPLAY: display },
        stdout: "ignore",
        stderr: "pipe",
      });
      src.attach(10_000);
      expect(src.hello()).toMatchObject({ width: 320, height: 240, codec: "raw" });
      const buf = new Uint8Array(320 * 240 * 4);
      let frames = 0;
      for (let i = 0; i < 50 && frames < 3; i++) if (src.next(buf, 500).kind === "frame") frames++;
      expect(frames).toBe(3);
      // BGRA rows of the white screen (x11grab draws the pointer: a few pixels may differ)
      let white = 0;
      for (let o = 0; o < buf.length; o += 4) if (buf[o] === 255 && buf[o + 1] === 255 && buf[o + 2] === 255) white++;
      expect(white / (320 * 240)).toBeGreaterThan(0.99);
    } finally {
      exporter?.kill();
      await exporter?.exited;
      src.close();
      x.kill();
      await x.exited;
    }
  }, 30_000);

  test("the exported frames go through the native convert → encode pipeline; ffprobe decodes them", async () => {
    const capture = loadCaptureNative();
    const f = fixture("pipeline");
    const src = f.source as SocketFrameSource;
    let pipeline: CapturePipeline | null = null;
    try {
      src.attach(5000);
      pipeline = CapturePipeline.startFromNvf(capture, src.nativeHandle, { codec: "h264", fps: 60, bitrateKbps: 2000, threads: 1, ringSlots: 16 });
      const chunks = await collectAccessUnits(pipeline, 10, 15_000, 1 << 20);
      expect(chunks.length).toBe(10);
      const file = `/tmp/neuron-nvf-pipeline-${process.pid}.h264`;
      await Bun.write(file, Buffer.concat(chunks));
      expect(await probeStream(file, "h264")).toMatchObject({ codec: "h264", width: 320, height: 240, frames: 10 });
      Bun.spawnSync(["rm", "-f", file]);
    } finally {
      pipeline?.stop();
      await f.cleanup();
      capture.close();
    }
  });

  test("a socket path that cannot be bound is a clear error", () => {
    expect(() => new SocketFrameSource(native, { kind: "unix", path: "/nonexistent-dir/x.sock" })).toThrow(CaptureError);
    expect(() => new SocketFrameSource(native, { kind: "unix", path: "/nonexistent-dir/x.sock" })).toThrow("cannot listen on /nonexistent-dir/x.sock");
  });
});

describe("NVF1 over AF_VSOCK", () => {
  test("listener on a vsock port and a loopback guest (where the kernel allows)", async () => {
    let src: SocketFrameSource;
    try {
      src = new SocketFrameSource(native, { kind: "vsock", port: 15900 + (process.pid % 1000) });
    } catch (err) {
      console.warn(`skip: AF_VSOCK listener unavailable here: ${(err as Error).message}`);
      return;
    }
    try {
      let fd: number;
      try {
        fd = native.connectVsock(1, 15900 + (process.pid % 1000), 500); // VMADDR_CID_LOCAL
      } catch (err) {
        console.warn(`skip: AF_VSOCK loopback (CID 1) does not connect on this kernel (no vsock_loopback transport, no /dev/vhost-vsock): ${(err as Error).message}`);
        return;
      }
      const { writeSync, closeSync } = await import("node:fs");
      writeSync(fd, encodeHello({ width: 64, height: 64, fps: 60, maxPayload: 16384 }));
      writeSync(fd, encodeFrameHeader({ serial: 1, timestampUs: 1, stride: 256, payloadSize: 16384 }));
      writeSync(fd, new Uint8Array(16384));
      closeSync(fd);
      src.attach(2000);
      const ev = src.next(new Uint8Array(16384), 2000);
      expect(ev.kind).toBe("frame");
    } finally {
      src.close();
    }
  });
});
