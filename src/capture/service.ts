/**
 * The capture domain: which encoder this machine uses and why, what a guest's
 * shared-memory region holds, and a self-contained demo run (synthetic
 * producer → native pipeline). Knows no transport.
 */
import { existsSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import {
  CaptureNative,
  CapturePipeline,
  EncoderSpeedJob,
  EncoderUnavailableError,
  SyntheticProducer,
  VideoEncoder,
  type AccessUnitInfo,
} from "../../ffi/capture.ts";
import { AppError, conflict, invalid } from "../errors.ts";
import {
  DemoRequest,
  ShmName,
  type CodecName,
  type DemoResult,
  type EncoderProbe,
  type EncoderSpeedResult,
  type SourceStatus,
} from "./model.ts";
import { CaptureError, FRAME_TYPE_NAMES, KvmfrFrameSource } from "./source.ts";
import { HostOutputNative } from "../../ffi/hostout.ts";
import { hostInputCapability, hostOutputBackends, type HostSessionEnv } from "./host-output.ts";
import { chooseVmTransport, probeSourceKinds, type SourceKindStatus, type VmTransportChoice } from "./sources.ts";

/** What the source listing and the VM transport choice read besides the shm directory. */
export interface FrameSourceSettings {
  vsockDevice: string;
  frameSocketDir: string;
  /** uinput, the last input path into the host's session. */
  uinputDevice?: string;
  /** The desktop session the host-desktop source streams (its bus and PipeWire socket). */
  hostSession: () => HostSessionEnv;
  /** A VM's libvirt definition (virsh dumpxml). */
  domainXml?: (vm: string) => Promise<string>;
}

/** The desktop user's session (/run/user/<uid>), or this process's own environment. */
export function desktopSessionEnv(uid: number | null, env: Record<string, string | undefined> = process.env): HostSessionEnv {
  if (uid !== null) {
    const run = `/run/user/${uid}`;
    return { busAddress: `unix:path=${run}/bus`, pipewireSocket: `${run}/pipewire-0`, ...swaySessionIn(run, uid) };
  }
  const runtime = env.PIPEWIRE_RUNTIME_DIR ?? env.XDG_RUNTIME_DIR;
  return {
    busAddress: env.DBUS_SESSION_BUS_ADDRESS ?? null,
    pipewireSocket: runtime ? join(runtime, "pipewire-0") : null,
    swaySocket: env.SWAYSOCK ?? null,
    waylandDisplay: env.WAYLAND_DISPLAY ? (env.WAYLAND_DISPLAY.startsWith("/") || !env.XDG_RUNTIME_DIR ? env.WAYLAND_DISPLAY : join(env.XDG_RUNTIME_DIR, env.WAYLAND_DISPLAY)) : null,
  };
}

/** The user's Wayland socket (the first wayland-N) and a running sway's IPC socket (sway-ipc.<uid>.<pid>.sock, the newest). */
export function swaySessionIn(runtimeDir: string, uid: number): { swaySocket: string | null; waylandDisplay: string | null } {
  let names: string[] = [];
  try {
    names = readdirSync(runtimeDir);
  } catch {
    return { swaySocket: null, waylandDisplay: null };
  }
  const ipc = names.filter((n) => n.startsWith(`sway-ipc.${uid}.`) && n.endsWith(".sock")).map((n) => join(runtimeDir, n));
  const newest = ipc.map((p) => ({ p, t: statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0 })).sort((a, b) => b.t - a.t)[0]?.p ?? null;
  const wl = names.filter((n) => /^wayland-\d+$/.test(n)).sort()[0];
  return { swaySocket: newest, waylandDisplay: wl ? join(runtimeDir, wl) : null };
}

const FLAG_NAMES: [number, string][] = [
  [0x1, "BLOCK_SCREENSAVER"],
  [0x2, "REQUEST_ACTIVATION"],
  [0x4, "TRUNCATED"],
  [0x8, "HDR"],
  [0x10, "HDR_PQ"],
];

/** Parses the native probe report ("name: status (reason)" per line). */
export function parseProbeReport(codec: CodecName, report: string): EncoderProbe {
  const candidates = report
    .split("\n")
    .map((l) => l.match(/^(\S+): (chosen|unavailable|skipped) \((.*)\)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => ({ name: m[1]!, status: m[2] as "chosen" | "unavailable" | "skipped", reason: m[3]! }));
  const chosen = candidates.find((c) => c.status === "chosen") ?? null;
  return {
    codec,
    chosen: chosen?.name ?? null,
    reason: chosen ? chosen.reason : "no encoder could be opened",
    candidates,
  };
}

const pct = (values: number[], p: number) => {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const stage = (v: number[]) => ({ p50: Math.round(pct(v, 50) * 100) / 100, p99: Math.round(pct(v, 99) * 100) / 100 });

/** The bitrate a session at this mode typically asks for (~20 Mbps at 1080p60), for timing runs. */
export function bitrateFor(mode: { width: number; height: number; fps: number }): number {
  return Math.min(150_000, Math.max(2_000, Math.round((mode.width * mode.height * mode.fps) / 6_220)));
}

export interface DemoSink {
  (data: Uint8Array, info: AccessUnitInfo): void;
}

export class CaptureService {
  private native: CaptureNative | null = null;
  private demoSeq = 0;
  private demoRunning = false;
  /** Speed measurements in flight: close() stops and joins them before the library goes. */
  private readonly speedJobs = new Set<EncoderSpeedJob>();

  constructor(
    private readonly shmDir: string,
    /** libneuron's path, or a function that loads it on first use and returns the path (throws when it cannot). */
    private readonly nativePath: string | (() => string) | null,
    private readonly sourceSettings: FrameSourceSettings = {
      vsockDevice: "/dev/vhost-vsock",
      frameSocketDir: "/run/neuron-appliance-frames",
      hostSession: () => desktopSessionEnv(null),
    },
  ) {}

  private hostOutput: HostOutputNative | null = null;

  /** Every frame-source kind with whether this host can use it now, and why not. */
  listSources(): { sources: SourceKindStatus[] } {
    let nativeError: string | null = null;
    let path: string | null = null;
    try {
      if (!this.nativePath) throw new Error("no native library configured");
      path = typeof this.nativePath === "function" ? this.nativePath() : this.nativePath;
      this.hostOutput ??= new HostOutputNative(path);
    } catch (err) {
      nativeError = (err as Error).message;
    }
    const st = this.sourceSettings;
    return {
      sources: probeSourceKinds({
        shmDir: this.shmDir,
        vsockDevice: st.vsockDevice,
        frameSocketDir: st.frameSocketDir,
        nativeError,
        hostOutputBackends: this.hostOutput ? hostOutputBackends(this.hostOutput, st.hostSession()) : null,
        hostInput: hostInputCapability(this.hostOutput, st.hostSession(), st.uinputDevice ?? "/dev/uinput"),
      }),
    };
  }

  /** Which transport the VM's frames take (IVSHMEM → vsock → unix socket) and why. */
  async vmTransport(vm: string): Promise<VmTransportChoice> {
    const parsed = ShmName.safeParse(vm);
    if (!parsed.success) throw invalid(`bad VM name ${JSON.stringify(vm)}: ${parsed.error.issues[0]?.message}`);
    if (!this.sourceSettings.domainXml) throw new AppError("LIBVIRT_UNAVAILABLE", "no libvirt connection to read the VM's definition", { status: 503 });
    const xml = await this.sourceSettings.domainXml(parsed.data);
    return chooseVmTransport(parsed.data, xml, { shmDir: this.shmDir, vsockDevice: this.sourceSettings.vsockDevice, frameSocketDir: this.sourceSettings.frameSocketDir });
  }

  private lib(): CaptureNative {
    if (!this.nativePath)
      throw new AppError("NATIVE_UNAVAILABLE", "the native library is not loaded; capture needs it", { status: 503 });
    this.native ??= new CaptureNative(typeof this.nativePath === "function" ? this.nativePath() : this.nativePath);
    return this.native;
  }

  /** A reader of the LGMP/KVMFR region at `path` (not attached yet): previews of a VM's screen. */
  openFrameSource(path: string): KvmfrFrameSource {
    return new KvmfrFrameSource(this.lib(), path);
  }

  /** The native capture → encode pipeline on the region at `path` (a VM's live view). */
  startPipeline(path: string, opts: { codec: "h264"; fps: number; bitrateKbps: number; threads: number }): CapturePipeline {
    return CapturePipeline.start(this.lib(), path, opts);
  }

  /** Probes the encoders for `codec` (hardware first) and reports the choice with every reason. */
  probeEncoders(codec: CodecName = "h264"): EncoderProbe {
    const native = this.lib();
    try {
      const enc = VideoEncoder.open(native, { codec, width: 1280, height: 720, fps: 60, bitrateKbps: 10000, threads: 2 });
      const report = enc.report;
      enc.close();
      return parseProbeReport(codec, report);
    } catch (err) {
      if (err instanceof EncoderUnavailableError) return parseProbeReport(codec, err.report);
      throw err;
    }
  }

  /**
   * Times `codec` at one mode on a native thread (moving test pattern, BGRA → I420 → access
   * unit, the session pipeline's settings and encoder threads): frames per second of converting
   * and encoding, bounded by `limits`. The event loop only polls. `cancelled()` stops it early.
   */
  async measureSpeed(
    codec: CodecName,
    mode: { width: number; height: number; fps: number },
    opts: { maxFrames?: number; maxMs?: number; threads?: number; cancelled?: () => boolean } = {},
  ): Promise<EncoderSpeedResult> {
    const native = this.lib();
    const maxMs = opts.maxMs ?? 1500;
    const job = EncoderSpeedJob.start(
      native,
      { codec, width: mode.width, height: mode.height, fps: mode.fps, bitrateKbps: bitrateFor(mode), threads: opts.threads ?? 3 },
      { maxFrames: opts.maxFrames ?? 60, maxMs },
    );
    this.speedJobs.add(job);
    try {
      // the budget counts encoding time only; opening and the warm-up frames come on top
      const deadline = Date.now() + maxMs * 4 + 20_000;
      let st = job.state();
      while (!st.done) {
        if (opts.cancelled?.()) throw new AppError("ENCODER_SPEED_CANCELLED", "the encoder measurement was stopped", { status: 503 });
        if (Date.now() > deadline) throw new AppError("ENCODER_SPEED_TIMEOUT", `the ${codec} measurement at ${mode.width}x${mode.height} did not finish`, { status: 500 });
        await Bun.sleep(20);
        if (!this.speedJobs.has(job)) throw new AppError("ENCODER_SPEED_CANCELLED", "the capture service closed during the encoder measurement", { status: 503 });
        st = job.state();
      }
      const probe = parseProbeReport(codec, job.report());
      const fps = st.frames && st.busyUs ? st.frames / (st.busyUs / 1e6) : null;
      return {
        codec,
        encoder: probe.chosen,
        hardware: probe.chosen !== null && !st.software,
        reason: probe.reason,
        width: st.width || mode.width,
        height: st.height || mode.height,
        fps: mode.fps,
        frames: st.frames,
        measuredFps: fps === null ? null : Math.round(fps * 10) / 10,
        encodeP50Ms: Math.round(st.encodeP50Us / 10) / 100,
        encodeMaxMs: Math.round(st.encodeMaxUs / 10) / 100,
        error: st.status === 0 ? null : probe.chosen ? `encoding failed (status ${st.status})` : probe.reason,
      };
    } finally {
      this.speedJobs.delete(job);
      job.free();
    }
  }

  /** Attaches to the region `name` under the shm directory and reads one frame (bounded). */
  inspectSource(name: string, timeoutMs = 1000): SourceStatus {
    if (!Number.isInteger(timeoutMs) || timeoutMs < 10 || timeoutMs > 5000) throw invalid("timeoutMs must be 10-5000");
    const parsed = ShmName.safeParse(name);
    if (!parsed.success)
      throw invalid(`bad shared-memory name ${JSON.stringify(name)}: ${parsed.error.issues[0]?.message}`);
    const path = join(this.shmDir, parsed.data);
    if (!existsSync(path)) throw new CaptureError("CAPTURE_SOURCE_NOT_FOUND", `${path} does not exist`, { status: 404 });
    const source = new KvmfrFrameSource(this.lib(), path);
    try {
      source.attach(timeoutMs);
      const buf = new Uint8Array(3840 * 2160 * 4);
      let frame: SourceStatus["frame"] = null;
      const end = Date.now() + timeoutMs;
      while (!frame && Date.now() < end) {
        let ev;
        try {
          ev = source.next(buf, Math.max(1, end - Date.now()));
        } catch (err) {
          if (err instanceof CaptureError && err.errorCode === "CAPTURE_BUFFER_TOO_SMALL") break;
          throw err;
        }
        if (ev.kind !== "frame") continue;
        const i = ev.info;
        frame = {
          serial: i.frameSerial,
          type: FRAME_TYPE_NAMES[i.type] ?? `type ${i.type}`,
          width: i.dataWidth,
          height: i.dataHeight,
          frameWidth: i.frameWidth,
          frameHeight: i.frameHeight,
          rotation: i.rotation,
          flags: FLAG_NAMES.filter(([bit]) => i.flags & bit).map(([, n]) => n),
          damageRects: i.damage.length,
        };
      }
      const s = source.stats();
      const c = source.cursor();
      return {
        name: parsed.data,
        kind: "kvmfr",
        lgmpVersion: s.lgmpVersion,
        kvmfrVersion: s.kvmfrVersion,
        sessionId: s.sessionId,
        frame,
        cursor: { x: c.x, y: c.y, visible: c.visible, updates: c.updates },
      };
    } finally {
      source.close();
    }
  }

  /**
   * The synthetic producer writes a moving test pattern into a fresh region under
   * the shm directory; the native pipeline reads, converts and encodes it. Each
   * access unit goes to `sink` (if given). The region is removed afterwards.
   */
  async runDemo(input: Partial<DemoRequest>, sink?: DemoSink): Promise<DemoResult> {
    if (this.demoRunning) throw conflict("a capture demo is already running; try again when it ends");
    this.demoRunning = true;
    try {
      return await this.demo(input, sink);
    } finally {
      this.demoRunning = false;
    }
  }

  private async demo(input: Partial<DemoRequest>, sink?: DemoSink): Promise<DemoResult> {
    const parsed = DemoRequest.safeParse(input);
    if (!parsed.success)
      throw invalid(
        `bad demo settings: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ")}`,
      );
    const req = parsed.data;
    const native = this.lib();
    const path = join(this.shmDir, `neuron-demo-${process.pid}-${++this.demoSeq}`);
    const producer = SyntheticProducer.start(native, path, { width: req.width, height: req.height, fps: req.fps });
    let pipeline: CapturePipeline | null = null;
    try {
      pipeline = CapturePipeline.start(native, path, {
        codec: req.codec,
        fps: req.fps,
        bitrateKbps: req.bitrateKbps,
        threads: req.threads,
      });
      const buf = new Uint8Array(req.width * req.height * 2 + 65536);
      const infos: AccessUnitInfo[] = [];
      let bytes = 0;
      const t0 = performance.now();
      const deadline = Date.now() + 5000 + (req.frames * 2000) / req.fps;
      while (infos.length < req.frames && Date.now() < deadline) {
        const info = pipeline.poll(buf);
        if (!info) {
          const st = pipeline.stats();
          if (!st.running) break;
          await Bun.sleep(1);
          continue;
        }
        infos.push(info);
        bytes += info.size;
        sink?.(buf.subarray(0, info.size), info);
      }
      const elapsedMs = performance.now() - t0;
      const stats = pipeline.stats();
      const report = pipeline.encoderReport();
      if (!infos.length)
        throw new CaptureError("CAPTURE_DEMO_FAILED", `the pipeline produced no access units (last status ${stats.lastError})`, {
          status: 500,
          details: report ? parseProbeReport(req.codec, report) : undefined,
        });
      const probe = parseProbeReport(req.codec, report);
      return {
        encoder: probe.chosen ?? "unknown",
        encoderReport: report,
        codec: req.codec,
        width: stats.width,
        height: stats.height,
        accessUnits: infos.length,
        idrUnits: infos.filter((i) => i.idr).length,
        bytes,
        elapsedMs: Math.round(elapsedMs),
        fps: Math.round((infos.length / (elapsedMs / 1000)) * 100) / 100,
        latencyMs: stage(infos.map((i) => Number(i.doneNs - i.captureNs) / 1e6)),
        stagesMs: {
          copy: stage(infos.map((i) => i.copyUs / 1000)),
          convert: stage(infos.map((i) => i.convertUs / 1000)),
          encode: stage(infos.map((i) => i.encodeUs / 1000)),
        },
        dropped: stats.dropped,
      };
    } finally {
      pipeline?.stop();
      producer.stop();
      if (existsSync(path)) unlinkSync(path);
    }
  }

  close(): void {
    for (const job of this.speedJobs) job.free();
    this.speedJobs.clear();
    this.native?.close();
    this.native = null;
    this.hostOutput?.close();
    this.hostOutput = null;
  }
}
