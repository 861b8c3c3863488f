/**
 * A VM's live view for the console: its IVSHMEM frames through the native capture → H.264
 * pipeline, access unit by access unit, for as long as the viewer stays. No transport here:
 * open() refuses (VM not running, no shared memory, too many views) before anything is sent,
 * then the view's units() yields until the signal aborts; release() gives its slot back.
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

export interface LiveView {
  /** Access units until `signal` aborts (or the view is released). */
  units(signal: AbortSignal): AsyncGenerator<LiveUnit>;
  /** The next unit is an IDR (a viewer that fell behind and skipped frames resumes there). */
  requestIdr(): void;
  /** Stops the encoder and frees the view's slot; idempotent. */
  release(): void;
  /** Why units() ended by itself (the VM stopped), or null. */
  readonly endReason: string | null;
}

/** A view without frames this long asks libvirt whether its VM still runs (and again as often). */
export const LIVE_STATE_CHECK_MS = 2000;

export class LiveViewService {
  private views = 0;
  constructor(private readonly deps: LiveDeps) {}

  /** Why `vm` could have no view now (404 no such VM, 409 not running / no shared memory, 503 too many views); its region's path otherwise. */
  async check(vm: string): Promise<string> {
    const details = await this.deps.show(vm);
    if (details.state !== "running") throw conflict(`VM ${vm} is ${details.state}: the live view is of running VMs`);
    if (!details.shm) throw new AppError("LIVE_VIEW_UNAVAILABLE", `VM ${vm} has no shared memory (IVSHMEM) to read frames from`, { status: 409 });
    if (this.views >= (this.deps.maxViews ?? 2)) throw new AppError("LIVE_VIEW_BUSY", "too many live views are open; close one and try again", { status: 503 });
    return details.shm.path;
  }

  /** A view of `vm`, or the reason there is none (as check()). */
  async open(vm: string, opts: { fps: number; bitrateKbps: number }): Promise<LiveView> {
    const path = await this.check(vm);
    // another open may have taken the last slot while libvirt answered
    if (this.views >= (this.deps.maxViews ?? 2)) throw new AppError("LIVE_VIEW_BUSY", "too many live views are open; close one and try again", { status: 503 });
    this.views++;
    let pipeline: CapturePipeline | null = null;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      pipeline?.stop();
      pipeline = null;
      this.views--;
    };
    const deps = this.deps;
    let endReason: string | null = null;
    /** Null while the VM runs; otherwise why the view ends. */
    const stopped = async (): Promise<string | null> => {
      try {
        const d = await deps.show(vm);
        return d.state === "running" ? null : `VM ${vm} is ${d.state}`;
      } catch (err) {
        return err instanceof AppError && err.status === 404 ? `VM ${vm} no longer exists` : null;
      }
    };
    return {
      release,
      get endReason() {
        return endReason;
      },
      requestIdr: () => pipeline?.requestIdr(),
      async *units(signal: AbortSignal): AsyncGenerator<LiveUnit> {
        try {
          const buf = new Uint8Array(Math.max(1 << 20, Math.min(statSync(path).size, 64 << 20)));
          let lastUnit = Date.now();
          let lastCheck = 0;
          while (!signal.aborted && !released) {
            // no frames for a while: the VM may have stopped (its region stays; nothing writes it)
            const now = Date.now();
            if (now - lastUnit > LIVE_STATE_CHECK_MS && now - lastCheck > LIVE_STATE_CHECK_MS) {
              lastCheck = now;
              endReason = await stopped();
              if (endReason) return;
            }
            if (!pipeline) {
              try {
                pipeline = deps.startPipeline(path, { codec: "h264", fps: opts.fps, bitrateKbps: opts.bitrateKbps, threads: 2 });
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
            lastUnit = Date.now();
            yield { idr: info.idr, width: info.width, height: info.height, data: buf.slice(0, info.size) };
          }
        } finally {
          release();
        }
      },
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
}
