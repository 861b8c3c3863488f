/**
 * Frames a guest exports over a stream socket (NVF1, native/vsock.h): AF_VSOCK for a VM
 * with a vsock device, or a unix socket (a chardev, a local exporter) through the same
 * native listener and parser. Raw BGRA frames come out tightly packed; a guest that sends
 * H.264 gives access units (FrameInfo.type FRAME_H264_AU) for the packetizer as they are.
 */
import { NvfListenError, NvfReader, NVF_DEFAULT_PORT, type NvfHello, type VsockNative } from "../../ffi/vsock.ts";
import type { CursorInfo, ReaderStats } from "../../ffi/capture.ts";
import type { Pointer } from "bun:ffi";
import { CaptureError, type FrameEvent, type FrameSource } from "./source.ts";

const NO_CURSOR: CursorInfo = { x: 0, y: 0, visible: false, shapeSerial: 0, shapeWidth: 0, shapeHeight: 0, shapeType: 0, updates: 0 };

export type SocketEndpoint = { kind: "vsock"; port?: number } | { kind: "unix"; path: string };

export class SocketFrameSource implements FrameSource {
  readonly kind: "vsock" | "unix";
  private readonly reader: NvfReader;
  /** The guest's capture timestamp of the last frame (microseconds, its clock). */
  lastTimestampUs = 0;

  constructor(native: VsockNative, readonly endpoint: SocketEndpoint, maxFrameBytes = 64 << 20) {
    this.kind = endpoint.kind;
    try {
      this.reader =
        endpoint.kind === "unix"
          ? NvfReader.listenUnix(native, endpoint.path, maxFrameBytes)
          : NvfReader.listenVsock(native, endpoint.port ?? NVF_DEFAULT_PORT, maxFrameBytes);
    } catch (err) {
      const where = endpoint.kind === "unix" ? endpoint.path : `vsock port ${endpoint.port ?? NVF_DEFAULT_PORT}`;
      throw new CaptureError("CAPTURE_SOURCE_UNAVAILABLE", `cannot listen on ${where}: ${(err as NvfListenError).message}`, {
        status: 503,
        cause: err,
      });
    }
  }

  attach(timeoutMs: number): void {
    if (this.reader.attach(timeoutMs) !== 0)
      throw new CaptureError("CAPTURE_NO_PRODUCER", `${this.describe()}: ${this.reader.error() || "no guest connected"}`, { status: 504 });
  }

  /** The native listener, for the encode pipeline (CapturePipeline.startFromNvf). */
  get nativeHandle(): Pointer {
    return this.reader.nativeHandle;
  }

  hello(): NvfHello {
    return this.reader.hello();
  }

  next(dst: Uint8Array, timeoutMs: number): FrameEvent {
    const r = this.reader.nextFrame(dst, timeoutMs);
    switch (r.event) {
      case "frame":
        this.lastTimestampUs = r.timestampUs;
        return { kind: "frame", info: r.info! };
      case "restarted":
        return { kind: "restarted" };
      case "rejected":
        return { kind: "rejected", reason: this.reader.error() };
      case "too-small":
        throw new CaptureError("CAPTURE_BUFFER_TOO_SMALL", `frame needs ${r.info?.bytes} bytes, buffer has ${dst.length}`, { status: 500 });
      case "error":
        throw new CaptureError("CAPTURE_FAILED", `${this.describe()}: status ${r.status}`, { status: 500 });
      default:
        return { kind: "timeout" };
    }
  }

  cursor(): CursorInfo {
    return NO_CURSOR; // NVF1 draws the cursor into the frames
  }

  stats(): ReaderStats {
    return this.reader.stats();
  }

  /** Why the last connection was dropped (empty if none was). */
  lastError(): string {
    return this.reader.error();
  }

  close(): void {
    this.reader.close();
  }

  private describe(): string {
    return this.endpoint.kind === "unix" ? this.endpoint.path : `vsock port ${this.endpoint.port ?? NVF_DEFAULT_PORT}`;
  }
}
