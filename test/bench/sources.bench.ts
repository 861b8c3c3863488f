/**
 * Frame sources → access unit, in the same run: the host's own desktop (Mutter virtual
 * output at 1920x1080@60 through PipeWire, converted in place by the native pipeline) and a
 * VM's NVF1 fallback (the guest agent's test-pattern exporter on a unix socket, 1080p) next to
 * the IVSHMEM source (the synthetic LGMP/KVMFR producer in its own process at 1080p60), all
 * through the same convert → encode (x264, 2 threads) pipeline. Prints one JSON object per
 * line and case, then the ratios to IVSHMEM:
 *   { case, frames, fps, p50Ms, p99Ms, stages: { copy, convert, encode }, producerFps }
 * p50Ms/p99Ms: from the frame seen (IVSHMEM message / PipeWire buffer) to the access unit
 * complete. fps is what the producer delivered (Mutter renders on damage, here a software
 * Wayland client: its rate is the compositor's, not the pipeline's). Bounded: FRAMES access
 * units (default 120) or 30 s per case. The desktop session (dbus-daemon, pipewire,
 * wireplumber, mutter --headless, weston-simple-shm) is started here and stopped by PID.
 *
 *   npm run bench:sources
 */
import { CaptureNative, CapturePipeline, type AccessUnitInfo } from "../../ffi/capture.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { VsockNative } from "../../ffi/vsock.ts";
import { SocketFrameSource } from "../../src/capture/socket-source.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostDesktopOpener } from "../../src/capture/host-output.ts";
import { removeFile, shmPath, spawnProducer } from "../capture/helpers.ts";
import { HAVE_MUTTER, MISSING_MUTTER, startMutterSession } from "../capture/desktop-session.ts";

const FRAMES = Math.min(Math.max(Number(process.env.FRAMES ?? 120), 20), 2000);
const W = 1920, H = 1080, FPS = 60;
const native = new CaptureNative(resolveNativePath({}));

const pct = (v: number[], p: number) => {
  if (!v.length) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const r2 = (v: number) => Math.round(v * 100) / 100;
const stage = (v: number[]) => ({ p50: r2(pct(v, 50)), p99: r2(pct(v, 99)) });

async function drain(name: string, p: CapturePipeline): Promise<{ case: string; p50Ms: number; p99Ms: number } & Record<string, unknown>> {
  const buf = new Uint8Array(W * H * 2);
  const infos: AccessUnitInfo[] = [];
  const warmup = 10;
  let t0 = performance.now();
  const end = Date.now() + 30_000;
  while (infos.length < FRAMES + warmup && Date.now() < end) {
    const info = p.poll(buf);
    if (!info) {
      await Bun.sleep(1);
      continue;
    }
    infos.push(info);
    if (infos.length === warmup) t0 = performance.now();
  }
  const m = infos.slice(warmup);
  const lat = m.map((i) => Number(i.doneNs - i.captureNs) / 1e6);
  const out = {
    case: name,
    resolution: `${W}x${H}@${FPS}`,
    frames: m.length,
    fps: r2(m.length / ((performance.now() - t0) / 1000)),
    p50Ms: r2(pct(lat, 50)),
    p99Ms: r2(pct(lat, 99)),
    stages: { copy: stage(m.map((i) => i.copyUs / 1000)), convert: stage(m.map((i) => i.convertUs / 1000)), encode: stage(m.map((i) => i.encodeUs / 1000)) },
  };
  console.log(JSON.stringify(out));
  return out;
}

async function ivshmem() {
  const path = shmPath("bench-sources");
  const producer = await spawnProducer(path, { width: W, height: H, fps: FPS });
  const p = CapturePipeline.start(native, path, { codec: "h264", fps: FPS, bitrateKbps: 20000, threads: 2, ringSlots: 32 });
  try {
    return await drain("ivshmem-kvmfr", p);
  } finally {
    p.stop();
    await producer.stop();
    removeFile(path);
  }
}

/** A VM's frames over the NVF1 fallback: the guest agent's exporter (test pattern) on a unix socket. */
async function nvfUnix() {
  const vsock = new VsockNative(resolveNativePath({}));
  const path = join(tmpdir(), `neuron-bench-nvf-${process.pid}.sock`);
  const src = new SocketFrameSource(vsock, { kind: "unix", path });
  const exporter = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/guest-agent/main.ts"), "export-frames", "--unix", path, "--width", String(W), "--height", String(H), "--fps", String(FPS)], {
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    src.attach(10_000);
    const p = CapturePipeline.startFromNvf(native, src.nativeHandle, { codec: "h264", fps: FPS, bitrateKbps: 20000, threads: 2, ringSlots: 32 });
    try {
      return await drain("vm-nvf1-unix", p);
    } finally {
      p.stop();
    }
  } finally {
    exporter.kill();
    await exporter.exited;
    src.close();
    vsock.close();
  }
}

async function hostDesktop() {
  if (!HAVE_MUTTER || !Bun.which("weston-simple-shm")) {
    console.log(JSON.stringify({ case: "host-desktop", skipped: `needs ${[...MISSING_MUTTER, ...(Bun.which("weston-simple-shm") ? [] : ["weston-simple-shm"])].join(", ")}` }));
    return null;
  }
  const s = await startMutterSession();
  try {
    const open = hostDesktopOpener(resolveNativePath({}), () => ({ busAddress: s.busAddress, pipewireSocket: s.pipewireSocket }));
    const out = open({ width: W, height: H, fps: FPS });
    s.client(["weston-simple-shm"]);
    const p = CapturePipeline.startFromStream(native, out.pwStream.nativeHandle, { codec: "h264", fps: FPS, bitrateKbps: 20000, threads: 2, ringSlots: 32 });
    try {
      const r = await drain("host-desktop-mutter", p);
      console.log(JSON.stringify({ case: "host-desktop-mutter", pipewire: out.pwStats() }));
      return r;
    } finally {
      p.stop();
      out.close();
    }
  } finally {
    await s.stop();
  }
}

const base = await ivshmem();
const nvf = await nvfUnix();
console.log(JSON.stringify({ ratio: "nvf1-unix / ivshmem", p50: r2(nvf.p50Ms / base.p50Ms), p99: r2(nvf.p99Ms / base.p99Ms) }));
const host = await hostDesktop();
if (host) console.log(JSON.stringify({ ratio: "host-desktop / ivshmem", p50: r2(host.p50Ms / base.p50Ms), p99: r2(host.p99Ms / base.p99Ms) }));
native.close();
