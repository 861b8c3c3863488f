/**
 * Where a session's frames come from: the VM's IVSHMEM region when the app names a VM
 * and its shared memory exists; else, for a VM whose transport was chosen as vsock or a
 * unix socket (capture/sources.ts chooseVmTransport), an NVF1 listener the guest's exporter
 * sends to; otherwise the synthetic moving test pattern (with a frame counter) written by
 * the native producer into a private region. Either way the native capture → convert →
 * encode pipeline reads the source and fills a ring of access units that the video stream
 * drains.
 */
import { existsSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { CapturePipeline, SyntheticProducer, type CaptureNative, type CodecName, type PipelineOptions } from "../../../ffi/capture.ts";
import { shmPath } from "../../vm/shm.ts";
import type { HostVirtualOutputSource } from "../../capture/host-output.ts";
import type { HostInputTarget } from "../../input/host-session-backend.ts";
import type { NvfListenerPool } from "../../capture/nvf-listeners.ts";
import type { VmTransportChoice } from "../../capture/sources.ts";

export interface EncodeSettings {
  width: number;
  height: number;
  fps: number;
  codec: CodecName;
  bitrateKbps: number;
  threads: number;
  /** libavcodec encoder to use without probing (tests, benchmarks). */
  encoder?: string;
}

/** Opens and attaches the host's own desktop at the client's mode (a per-session virtual output). */
export type HostDesktopOpener = (mode: { width: number; height: number; fps: number }) => HostVirtualOutputSource;

/** How a VM's frames reach the host (IVSHMEM, vsock, unix socket); null for other sources. */
export type FrameTransport = "kvmfr" | "vsock" | "unix";

export interface VideoSource {
  readonly kind: "vm" | "test-pattern" | "host-desktop";
  readonly transport: FrameTransport | null;
  /** Why that transport (chooseVmTransport's reason, or the region that exists); null for other sources. */
  readonly transportReason?: string | null;
  /** host-desktop: input into the host's session at this output (null: the compositor takes none). */
  readonly hostInput?: HostInputTarget | null;
  /** Capacity of one ring slot: the largest access unit the pipeline hands over. */
  readonly slotBytes: number;
  readonly path: string;
  readonly pipeline: CapturePipeline;
  stop(): void;
}

let seq = 0;

/** An access unit never exceeds an uncompressed I420 frame; at least 2 MiB. */
export function slotBytesFor(width: number, height: number): number {
  return Math.max(Math.ceil((width * height * 3) / 2) + 65536, 2 << 20);
}

export function openVideoSource(
  native: CaptureNative,
  o: {
    shmDir: string;
    vmName: string | null;
    encode: EncodeSettings;
    ringSlots?: number;
    appKind?: string;
    hostDesktop?: HostDesktopOpener | null;
    /** The VM's chosen frame transport (vsock / unix socket are streamed through an NVF1 listener). */
    vmTransport?: VmTransportChoice | null;
    /** The VMs' NVF1 listeners (needed with a vsock or unix transport). */
    nvf?: NvfListenerPool | null;
  },
): VideoSource {
  const pipelineOpts = {
    codec: o.encode.codec,
    fps: o.encode.fps,
    bitrateKbps: o.encode.bitrateKbps,
    threads: o.encode.threads,
    encoder: o.encode.encoder,
    ringSlots: o.ringSlots ?? 8,
    slotBytes: slotBytesFor(o.encode.width, o.encode.height),
  };
  if (o.appKind === "host-desktop") {
    if (!o.hostDesktop) throw new Error("the host desktop cannot be streamed: no compositor backend is configured");
    // the output exists for this session only: stop() removes it
    const output = o.hostDesktop({ width: o.encode.width, height: o.encode.height, fps: o.encode.fps });
    let pipeline: CapturePipeline;
    try {
      pipeline = CapturePipeline.startFromStream(native, output.pwStream.nativeHandle, pipelineOpts);
    } catch (err) {
      output.close();
      throw err;
    }
    return {
      kind: "host-desktop",
      transport: null,
      hostInput: output.input ? { input: output.input, width: o.encode.width, height: o.encode.height } : null,
      path: `pipewire node ${output.nodeId}`,
      pipeline,
      slotBytes: pipelineOpts.slotBytes,
      stop() {
        pipeline.stop();
        output.close();
      },
    };
  }
  if (o.vmName) {
    const path = shmPath(o.shmDir, o.vmName);
    if (existsSync(path)) {
      const pipeline = CapturePipeline.start(native, path, pipelineOpts);
      return { kind: "vm", transport: "kvmfr", transportReason: `IVSHMEM region ${path}`, path, pipeline, slotBytes: pipelineOpts.slotBytes, stop: () => pipeline.stop() };
    }
    const t = o.vmTransport;
    if (t && t.vm === o.vmName && (t.kind === "vsock" || t.kind === "unix")) return openSocketSource(native, t, o.nvf ?? null, pipelineOpts);
  }
  const path = join(o.shmDir, `neuron-video-${process.pid}-${++seq}`);
  const producer = SyntheticProducer.start(native, path, { width: o.encode.width, height: o.encode.height, fps: o.encode.fps });
  let pipeline: CapturePipeline;
  try {
    pipeline = CapturePipeline.start(native, path, pipelineOpts);
  } catch (err) {
    producer.stop();
    if (existsSync(path)) unlinkSync(path);
    throw err;
  }
  return {
    kind: "test-pattern",
    transport: null,
    path,
    slotBytes: pipelineOpts.slotBytes,
    pipeline,
    stop() {
      pipeline.stop();
      producer.stop();
      if (existsSync(path)) unlinkSync(path);
    },
  };
}

/**
 * A VM's frames over NVF1: the VM's listener (held by the pool across sessions) waits on its
 * own thread for the guest's exporter, and the pipeline reads what it sends; until a guest
 * connects the pipeline sees timeouts, which the VM's liveness check weighs like a stalled
 * IVSHMEM producer.
 */
function openSocketSource(
  native: CaptureNative,
  t: VmTransportChoice,
  pool: NvfListenerPool | null,
  pipelineOpts: PipelineOptions & { slotBytes: number },
): VideoSource {
  if (!pool) throw new Error(`VM ${t.vm}: its frames come over ${t.kind}, but no NVF1 listener module is loaded`);
  if (t.kind === "unix") {
    if (!t.socketPath) throw new Error(`VM ${t.vm}: no socket path for its unix frame transport`);
    mkdirSync(dirname(t.socketPath), { recursive: true, mode: 0o750 });
  }
  const endpoint = t.kind === "unix" ? { kind: "unix" as const, path: t.socketPath! } : { kind: "vsock" as const };
  const lease = pool.acquire(endpoint, `VM ${t.vm}`);
  let pipeline: CapturePipeline;
  try {
    pipeline = CapturePipeline.startFromNvf(native, lease.source.nativeHandle, pipelineOpts);
  } catch (err) {
    lease.release();
    throw err;
  }
  return {
    kind: "vm",
    transport: t.kind,
    transportReason: t.reason,
    path: t.kind === "unix" ? t.socketPath! : "vsock port 5900",
    pipeline,
    slotBytes: pipelineOpts.slotBytes,
    stop() {
      pipeline.stop(); // it borrows the listener, which stays open for the VM's next session
      lease.release();
    },
  };
}
