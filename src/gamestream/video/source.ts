/**
 * Where a session's frames come from: the VM's IVSHMEM region when the app names a VM
 * and its shared memory exists, otherwise the synthetic moving test pattern (with a
 * frame counter) written by the native producer into a private region. Either way the
 * native capture → convert → encode pipeline reads the region and fills a ring of
 * access units that the video stream drains.
 */
import { existsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { CapturePipeline, SyntheticProducer, type CaptureNative, type CodecName } from "../../../ffi/capture.ts";
import { shmPath } from "../../vm/shm.ts";
import type { HostVirtualOutputSource } from "../../capture/host-output.ts";

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

export interface VideoSource {
  readonly kind: "vm" | "test-pattern" | "host-desktop";
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
  o: { shmDir: string; vmName: string | null; encode: EncodeSettings; ringSlots?: number; appKind?: string; hostDesktop?: HostDesktopOpener | null },
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
      return { kind: "vm", path, pipeline, slotBytes: pipelineOpts.slotBytes, stop: () => pipeline.stop() };
    }
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
