/**
 * Low-rate thumbnails of a running VM, read from its IVSHMEM region (the Looking Glass host's
 * frames): the newest frame every tick, scaled down to a small RGB image and encoded as PNG;
 * while no Looking Glass host writes frames, QEMU's own display (screendump) instead. No
 * HTTP here; the console's route streams what `frames` yields. The frame reader's calls are
 * bounded to a few milliseconds, so a tick never holds the event loop for long.
 */
import { statSync } from "node:fs";
import { AppError, conflict } from "../errors.ts";
import { encodePng } from "../gamestream/boxart.ts";
import type { FrameSource } from "./source.ts";

export interface PreviewVm {
  state: string;
  shm: { path: string } | null;
}

export interface PreviewDeps {
  show(vm: string): Promise<PreviewVm>;
  openSource(path: string): FrameSource;
  /** The VM's display as a PNG (QMP screendump) for when no Looking Glass host writes frames; null when it cannot. */
  screendump?(vm: string): Promise<Uint8Array | null>;
  /** Preview streams at once (each holds a frame buffer the size of the region). */
  maxStreams?: number;
}

export interface PreviewOptions {
  fps: number;
  width: number;
}

const BGRA = 1;
const RGBA = 2;

/** Nearest-neighbour scale of a tightly packed 4-byte-per-pixel frame to RGB `w`×`h`. */
export function scaleToRgb(src: Uint8Array, sw: number, sh: number, type: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  const [r, b] = type === BGRA ? [2, 0] : [0, 2];
  for (let y = 0; y < h; y++) {
    const row = Math.min(sh - 1, Math.floor((y * sh) / h)) * sw * 4;
    for (let x = 0; x < w; x++) {
      const s = row + Math.min(sw - 1, Math.floor((x * sw) / w)) * 4;
      const d = (y * w + x) * 3;
      out[d] = src[s + r]!;
      out[d + 1] = src[s + 1]!;
      out[d + 2] = src[s + b]!;
    }
  }
  return out;
}

export class PreviewService {
  private streams = 0;
  constructor(private readonly deps: PreviewDeps) {}

  /** PNG thumbnails of `vm`, one per tick while it runs, until `signal` aborts or the VM stops. */
  async *frames(vm: string, opts: PreviewOptions, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const details = await this.deps.show(vm);
    if (details.state !== "running") throw conflict(`VM ${vm} is ${details.state}: previews are of running VMs`);
    if (!details.shm) throw new AppError("PREVIEW_UNAVAILABLE", `VM ${vm} has no shared memory (IVSHMEM) to read frames from`, { status: 409 });
    if (this.streams >= (this.deps.maxStreams ?? 8)) throw new AppError("PREVIEW_BUSY", "too many previews are open; close one and try again", { status: 503 });
    this.streams++;
    const path = details.shm.path;
    let source: FrameSource | null = null;
    let buf: Uint8Array | null = null;
    const interval = Math.round(1000 / opts.fps);
    try {
      for (let tick = 0; !signal.aborted; tick++) {
        if (tick > 0) await sleep(interval, signal);
        if (signal.aborted) return;
        // the VM may have stopped meanwhile (checked every few seconds)
        if (tick % Math.max(1, opts.fps * 5) === 0 && tick > 0 && (await this.deps.show(vm).catch(() => null))?.state !== "running") return;
        try {
          if (!source) {
            source = this.deps.openSource(path);
            source.attach(5);
            buf = new Uint8Array(statSync(path).size);
          }
          let last: { w: number; h: number; type: number } | null = null;
          // drain what is queued, keep the newest
          for (let i = 0; i < 8; i++) {
            const ev = source.next(buf!, 2);
            if (ev.kind === "frame") last = { w: ev.info.dataWidth, h: ev.info.dataHeight, type: ev.info.type };
            else break;
          }
          if (!last || (last.type !== BGRA && last.type !== RGBA)) continue;
          const w = Math.min(opts.width, last.w);
          const h = Math.max(1, Math.round((w * last.h) / last.w));
          yield encodePng(w, h, scaleToRgb(buf!, last.w, last.h, last.type, w, h));
        } catch {
          // no Looking Glass host (yet), or it restarted: attach again on a later tick; meanwhile QEMU's own display
          source?.close();
          source = null;
          const png = await this.deps.screendump?.(vm);
          if (png && !signal.aborted) yield png;
        }
      }
    } finally {
      source?.close();
      this.streams--;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
}
