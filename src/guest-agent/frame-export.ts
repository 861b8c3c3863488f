/**
 * The guest side of NVF1 frame export (native/vsock.h): frames of this guest's screen to
 * the host over AF_VSOCK (port 5900 by default) or a unix socket.
 *
 *   neuron-agent export-frames --mode test-pattern|x11 [--unix PATH | --device PATH | --vsock-cid N --vsock-port N]
 *                              [--width N --height N --fps N --frames N]
 *
 * --device writes to a character device, e.g. a virtio-serial port (/dev/vportNpM) whose host side
 * is the unix-socket listener: the fallback for a VM with neither IVSHMEM nor vsock.
 * Modes: test-pattern (a moving pattern with the frame serial burned in, always available);
 * x11 (ffmpeg's x11grab of $DISPLAY as BGRA, where ffmpeg and an X display exist). PipeWire
 * capture of a Wayland session needs the ScreenCast portal's consent dialog in the guest and
 * is reported as unavailable by exportModes().
 */
import { connect, type Socket } from "node:net";
import { closeSync, openSync, writeSync } from "node:fs";
import { parseArgs } from "node:util";

export const NVF_MAGIC = 0x3146564e;
export const NVF_FRAME_MAGIC = 0x4d415246;

export interface ExportOptions {
  width: number;
  height: number;
  fps: number;
  /** Stop after this many frames (0: until stopped). */
  frames?: number;
  /** Bytes of padding per row beyond width * 4 (a real stride). */
  rowPadding?: number;
}

/** The 32-byte hello (raw BGRA). */
export function encodeHello(o: { width: number; height: number; fps: number; codec?: 1 | 2; maxPayload: number }): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, NVF_MAGIC, true);
  v.setUint16(4, 1, true);
  v.setUint16(6, 32, true);
  v.setUint32(8, o.codec ?? 1, true);
  v.setUint32(12, o.width, true);
  v.setUint32(16, o.height, true);
  v.setUint32(20, o.fps, true);
  v.setUint32(24, o.maxPayload, true);
  return b;
}

/** A frame header (32 bytes) plus its damage rects. */
export function encodeFrameHeader(f: {
  serial: number;
  timestampUs: number;
  stride: number;
  payloadSize: number;
  keyframe?: boolean;
  damage?: { x: number; y: number; w: number; h: number }[];
}): Uint8Array {
  const damage = f.damage ?? [];
  const b = new Uint8Array(32 + damage.length * 16);
  const v = new DataView(b.buffer);
  v.setUint32(0, NVF_FRAME_MAGIC, true);
  v.setUint32(4, f.serial, true);
  v.setBigUint64(8, BigInt(Math.floor(f.timestampUs)), true);
  v.setUint32(16, f.stride, true);
  v.setUint32(20, f.payloadSize, true);
  v.setUint16(24, damage.length, true);
  v.setUint16(26, f.keyframe ? 1 : 0, true);
  damage.forEach((d, i) => {
    v.setUint32(32 + i * 16, d.x, true);
    v.setUint32(36 + i * 16, d.y, true);
    v.setUint32(40 + i * 16, d.w, true);
    v.setUint32(44 + i * 16, d.h, true);
  });
  return b;
}

/** Fills a BGRA test pattern for frame n (moving gradient; the serial in the first row). */
export function fillPattern(dst: Uint8Array, width: number, height: number, stride: number, n: number): void {
  const row = new Uint8Array(width * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = x * 4;
      row[o] = (x + 2 * n) & 0xff;
      row[o + 1] = (y + n) & 0xff;
      row[o + 2] = ((((x >> 4) ^ (y >> 4)) * 16) + n) & 0xff;
      row[o + 3] = 0xff;
    }
    dst.set(row, y * stride);
  }
  new DataView(dst.buffer, dst.byteOffset).setUint32(0, n >>> 0, true);
}

export type ExportMode = "test-pattern" | "x11" | "pipewire";

/** Which capture modes this guest offers, with the reason for each that it does not. */
export function exportModes(env: Record<string, string | undefined> = process.env): { mode: ExportMode; available: boolean; reason?: string }[] {
  const ffmpeg = Bun.which("ffmpeg");
  return [
    { mode: "test-pattern", available: true },
    env.DISPLAY && ffmpeg
      ? { mode: "x11", available: true }
      : { mode: "x11", available: false, reason: !env.DISPLAY ? "no X display ($DISPLAY is not set)" : "ffmpeg (x11grab) is not installed" },
    { mode: "pipewire", available: false, reason: "a Wayland session's PipeWire screen needs the ScreenCast portal's consent in the guest; not offered by this agent" },
  ];
}

/** A byte sink: a unix socket (node:net, buffered) or an fd (a vsock socket, blocking writes). */
interface Sink {
  write(b: Uint8Array): Promise<void>;
  close(): void;
}

async function unixSink(path: string, timeoutMs = 5000): Promise<Sink> {
  const sock: Socket = await new Promise((resolve, reject) => {
    const s = connect({ path });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`connecting to ${path} timed out`));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  let failed: Error | null = null;
  sock.on("error", (e) => (failed = e));
  return {
    write: (b) =>
      new Promise((resolve, reject) => {
        if (failed) return reject(failed);
        if (sock.write(b)) resolve();
        else sock.once("drain", () => resolve());
      }),
    close: () => sock.end(),
  };
}

function fdSink(fd: number): Sink {
  return {
    async write(b) {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    },
    close: () => closeSync(fd),
  };
}

/** Streams test-pattern frames to `sink` at o.fps until `stop()` or o.frames. */
async function exportPattern(sink: Sink, o: ExportOptions, stopped: () => boolean): Promise<number> {
  const stride = o.width * 4 + (o.rowPadding ?? 0);
  const size = stride * o.height;
  await sink.write(encodeHello({ width: o.width, height: o.height, fps: o.fps, maxPayload: size }));
  const frame = new Uint8Array(size);
  const t0 = performance.now();
  let n = 0;
  while (!stopped() && (!o.frames || n < o.frames)) {
    fillPattern(frame, o.width, o.height, stride, n);
    n++;
    await sink.write(encodeFrameHeader({ serial: n, timestampUs: performance.now() * 1000, stride, payloadSize: size }));
    await sink.write(frame);
    const due = t0 + (n * 1000) / o.fps - performance.now();
    if (due > 0) await Bun.sleep(due);
  }
  return n;
}

/** Streams $DISPLAY through ffmpeg x11grab (BGRA rawvideo on its stdout). */
async function exportX11(sink: Sink, o: ExportOptions, stopped: () => boolean): Promise<number> {
  const size = o.width * 4 * o.height;
  const proc = Bun.spawn(
    ["ffmpeg", "-loglevel", "error", "-f", "x11grab", "-framerate", String(o.fps), "-video_size", `${o.width}x${o.height}`, "-i", process.env.DISPLAY ?? ":0",
      ...(o.frames ? ["-frames:v", String(o.frames)] : []), "-f", "rawvideo", "-pix_fmt", "bgra", "pipe:1"],
    { stdout: "pipe", stderr: "inherit" },
  );
  await sink.write(encodeHello({ width: o.width, height: o.height, fps: o.fps, maxPayload: size }));
  let pending = new Uint8Array(0);
  let n = 0;
  try {
    for await (const chunk of proc.stdout) {
      if (stopped()) break;
      const joined = new Uint8Array(pending.length + chunk.length);
      joined.set(pending);
      joined.set(chunk, pending.length);
      let off = 0;
      while (joined.length - off >= size) {
        n++;
        await sink.write(encodeFrameHeader({ serial: n, timestampUs: performance.now() * 1000, stride: o.width * 4, payloadSize: size }));
        await sink.write(joined.subarray(off, off + size));
        off += size;
      }
      pending = joined.slice(off);
    }
  } finally {
    proc.kill();
    await proc.exited;
  }
  return n;
}

export type ExportTarget =
  | { kind: "unix"; path: string }
  | { kind: "device"; path: string }
  | { kind: "vsock"; cid: number; port: number; connectFd: (cid: number, port: number) => number };

export async function exportFrames(target: ExportTarget, mode: ExportMode, o: ExportOptions, stopped: () => boolean = () => false): Promise<number> {
  const avail = exportModes().find((m) => m.mode === mode);
  if (!avail?.available) throw new Error(`export mode ${mode} is unavailable: ${avail?.reason ?? "unknown mode"}`);
  const sink =
    target.kind === "unix"
      ? await unixSink(target.path)
      : target.kind === "device"
        ? fdSink(openSync(target.path, "w"))
        : fdSink(target.connectFd(target.cid, target.port));
  try {
    return mode === "x11" ? await exportX11(sink, o, stopped) : await exportPattern(sink, o, stopped);
  } finally {
    sink.close();
  }
}

/** `neuron-agent export-frames ...` */
export async function exportFramesMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: "string", default: "test-pattern" },
      unix: { type: "string" },
      device: { type: "string" },
      "vsock-cid": { type: "string", default: "2" },
      "vsock-port": { type: "string", default: "5900" },
      width: { type: "string", default: "1280" },
      height: { type: "string", default: "720" },
      fps: { type: "string", default: "60" },
      frames: { type: "string", default: "0" },
      "row-padding": { type: "string", default: "0" },
    },
    strict: true,
  });
  const num = (k: keyof typeof values) => {
    const v = Number(values[k]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${k} must be a whole number`);
    return v;
  };
  const mode = values.mode as ExportMode;
  if (!["test-pattern", "x11", "pipewire"].includes(mode)) throw new Error("--mode must be test-pattern, x11 or pipewire");
  let stop = false;
  process.on("SIGTERM", () => (stop = true));
  process.on("SIGINT", () => (stop = true));
  for (const k of ["unix", "device"] as const)
    if (values[k] !== undefined && values[k] === "") throw new Error(`--${k} needs a path (got an empty one)`);
  let target: ExportTarget;
  if (values.unix) target = { kind: "unix", path: values.unix };
  else if (values.device) target = { kind: "device", path: values.device };
  else {
    const { VsockNative } = await import("../../ffi/vsock.ts");
    const { resolveNativePath } = await import("../../ffi/native.ts");
    const native = new VsockNative(resolveNativePath({ explicit: process.env.NEURON_NATIVE_LIB }));
    target = { kind: "vsock", cid: num("vsock-cid"), port: num("vsock-port"), connectFd: (c, p) => native.connectVsock(c, p, 5000) };
  }
  const sent = await exportFrames(target, mode, { width: num("width"), height: num("height"), fps: num("fps"), frames: num("frames"), rowPadding: num("row-padding") }, () => stop);
  process.stderr.write(`export-frames: sent ${sent} frames\n`);
  return 0;
}

if (import.meta.main) {
  exportFramesMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`export-frames: error: ${err.message}\n`);
      process.exit(1);
    },
  );
}
