/**
 * FrameSource: what the streaming layer needs from any frame source (the
 * LGMP/KVMFR region today). Backends implement it; one contract suite
 * (test/capture/source-contract.ts) runs against each.
 */
import { KvmfrReader, type CaptureNative, type CursorInfo, type FrameInfo, type ReaderStats } from "../../ffi/capture.ts";
import { NfbReader, type FramebufNative } from "../../ffi/framebuf.ts";
import { AppError } from "../errors.ts";

export type FrameEvent =
  | { kind: "frame"; info: FrameInfo }
  | { kind: "timeout" }
  | { kind: "restarted" }
  | { kind: "rejected"; reason: string };

export interface FrameSource {
  readonly kind: string;
  /** Attach to the producer; throws a CaptureError naming the problem. */
  attach(timeoutMs: number): void;
  /** Next frame into dst (tightly packed rows); bounded by timeoutMs. */
  next(dst: Uint8Array, timeoutMs: number): FrameEvent;
  cursor(): CursorInfo;
  stats(): ReaderStats;
  close(): void;
}

export class CaptureError extends AppError {}

export const FRAME_TYPE_NAMES = ["INVALID", "BGRA", "RGBA", "RGBA10", "RGBA16F", "BGR_32", "RGB_24"] as const;

function attachError(status: number, message: string, where: string): CaptureError {
  switch (status) {
    case -8:
      return new CaptureError("CAPTURE_VERSION_MISMATCH", `${where}: ${message}`, { status: 409 });
    case -7:
      return new CaptureError("CAPTURE_BAD_REGION", `${where}: ${message}`, { status: 422 });
    case -9:
      return new CaptureError("CAPTURE_NO_PRODUCER", `${where}: ${message}`, { status: 504 });
    default:
      return new CaptureError("CAPTURE_FAILED", `${where}: ${message || `status ${status}`}`, { status: 500 });
  }
}

type ReadResult = { event: string; info: FrameInfo | null; status: number };

/** Opens a region file with a reader, turning any failure into CAPTURE_SOURCE_UNAVAILABLE. */
function openRegion<R>(open: () => R, path: string): R {
  try {
    return open();
  } catch (err) {
    throw new CaptureError("CAPTURE_SOURCE_UNAVAILABLE", `cannot open ${path} as a shared-memory region`, {
      status: 404,
      cause: err,
    });
  }
}

/** One reader result as a FrameEvent; errors and a too-small buffer throw. */
function toFrameEvent(r: ReadResult, dst: Uint8Array, reason: () => string, path: string): FrameEvent {
  switch (r.event) {
    case "frame":
      return { kind: "frame", info: r.info! };
    case "restarted":
      return { kind: "restarted" };
    case "rejected":
      return { kind: "rejected", reason: reason() };
    case "too-small":
      throw new CaptureError("CAPTURE_BUFFER_TOO_SMALL", `frame needs ${r.info?.bytes} bytes, buffer has ${dst.length}`, {
        status: 500,
      });
    case "error":
      throw attachError(r.status, reason(), path);
    default:
      return { kind: "timeout" };
  }
}

/** The LGMP v6 / KVMFR v20 region (Looking Glass B7 layout; B6 accepted). */
export class KvmfrFrameSource implements FrameSource {
  readonly kind = "kvmfr";
  private readonly reader: KvmfrReader;

  constructor(
    native: CaptureNative,
    private readonly path: string,
  ) {
    this.reader = openRegion(() => KvmfrReader.open(native, path), path);
  }

  attach(timeoutMs: number): void {
    const rc = this.reader.attach(timeoutMs);
    if (rc !== 0) throw attachError(rc, this.reader.error(), this.path);
  }

  next(dst: Uint8Array, timeoutMs: number): FrameEvent {
    const r = this.reader.nextFrame(dst, timeoutMs, Math.min(timeoutMs, 200));
    return toFrameEvent(r, dst, () => this.reader.error(), this.path);
  }

  cursor(): CursorInfo {
    return this.reader.cursor().info;
  }

  stats(): ReaderStats {
    return this.reader.stats();
  }

  close(): void {
    this.reader.close();
  }
}

/** The appliance's own NFB1 triple-buffered region (native/framebuf.h). */
export class TripleBufferFrameSource implements FrameSource {
  readonly kind = "nfb";
  private readonly reader: NfbReader;

  constructor(
    native: FramebufNative,
    private readonly path: string,
  ) {
    this.reader = openRegion(() => NfbReader.open(native, path), path);
  }

  attach(timeoutMs: number): void {
    const rc = this.reader.attach(timeoutMs);
    if (rc !== 0) throw attachError(rc, this.reader.error(), this.path);
  }

  next(dst: Uint8Array, timeoutMs: number): FrameEvent {
    const r = this.reader.nextFrame(dst, timeoutMs);
    return toFrameEvent(r, dst, () => this.reader.error(), this.path);
  }

  /** Interleaved s16le PCM written since the last call. */
  audio(dst: Uint8Array): { bytes: number; overrun: boolean } {
    return this.reader.audio(dst);
  }

  cursor(): CursorInfo {
    return this.reader.cursor();
  }

  stats(): ReaderStats {
    return this.reader.stats();
  }

  close(): void {
    this.reader.close();
  }
}
