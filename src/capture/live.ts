/**
 * A VM's live view for the console: its IVSHMEM frames through the native capture → H.264
 * pipeline, access unit by access unit, for as long as the viewer stays. No HTTP here.
 */
import { statSync } from "node:fs";
import type { AccessUnitInfo, CapturePipeline } from "../../ffi/capture.ts";
import { AppError, conflict } from "../errors.ts";
import type { PreviewVm } from "./preview.ts";

export interface LiveDeps {
  show(vm: string): Promise<PreviewVm>;
  startPipeline(path: string, opts: { codec: "h264"; fps: number; bitrateKbps: number; threads: number }): CapturePipeline;
  /** Live views at once (each runs an encoder). */
  maxViews?: number;
}

export interface LiveUnit {
  idr: boolean;
  width: number;
  height: number;
  data: Uint8Array;
}

export class LiveViewService {
  private views = 0;
  constructor(private readonly deps: LiveDeps) {}

  async *units(vm: string, opts: { fps: number; bitrateKbps: number }, signal: AbortSignal): AsyncGenerator<LiveUnit> {
    const details = await this.deps.show(vm);
    if (details.state !== "running") throw conflict(`VM ${vm} is ${details.state}: the live view is of running VMs`);
    if (!details.shm) throw new AppError("LIVE_VIEW_UNAVAILABLE", `VM ${vm} has no shared memory (IVSHMEM) to read frames from`, { status: 409 });
    if (this.views >= (this.deps.maxViews ?? 2)) throw new AppError("LIVE_VIEW_BUSY", "too many live views are open; close one and try again", { status: 503 });
    this.views++;
    let pipeline: CapturePipeline | null = null;
    try {
      const buf = new Uint8Array(Math.max(1 << 20, Math.min(statSync(details.shm.path).size, 64 << 20)));
      while (!signal.aborted) {
        if (!pipeline) {
          try {
            pipeline = this.deps.startPipeline(details.shm.path, { codec: "h264", fps: opts.fps, bitrateKbps: opts.bitrateKbps, threads: 2 });
          } catch {
            // no Looking Glass host writing frames yet: try again shortly
            await sleep(500, signal);
            continue;
          }
        }
        const info: AccessUnitInfo | null = pipeline.poll(buf);
        if (!info) {
          if (!pipeline.stats().running) {
            pipeline.stop();
            pipeline = null;
          }
          await sleep(4, signal);
          continue;
        }
        yield { idr: info.idr, width: info.width, height: info.height, data: buf.slice(0, info.size) };
      }
    } finally {
      pipeline?.stop();
      this.views--;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
}
