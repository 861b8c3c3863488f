/**
 * STX/ETX framing of the agent protocol (see PROTOCOL.md).
 *
 * A frame is 0x02, UTF-8 JSON, 0x03. The JSON never holds a raw 0x02 or 0x03:
 * encoders write them as \u0002 / \u0003 (JSON.stringify already escapes every
 * control character), and since neither byte occurs inside a multi-byte UTF-8
 * sequence the framing is byte-exact.
 *
 * The decoder never buffers more than `maxFrameBytes`: an oversized frame is
 * skipped up to its ETX, a nested STX restarts the frame, bytes between frames
 * are dropped, invalid UTF-8 or JSON drops that one frame. Each drop is
 * reported through `onDrop` and the stream goes on.
 */
export const STX = 0x02;
export const ETX = 0x03;
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

export type DropReason = "oversized" | "nested_stx" | "stray_bytes" | "invalid_utf8" | "invalid_json" | "not_an_object";

export interface FrameDrop {
  reason: DropReason;
  /** Bytes discarded with this drop. */
  bytes: number;
  detail?: string;
}

export interface FrameDecoderOptions {
  maxFrameBytes?: number;
  onFrame: (message: Record<string, unknown>) => void;
  onDrop: (drop: FrameDrop) => void;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Serialises one message into one frame; throws when it would exceed the bound. */
export function encodeFrame(message: unknown, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Uint8Array {
  const json = JSON.stringify(message);
  if (json === undefined) throw new TypeError("message is not JSON-serialisable");
  // JSON.stringify escapes U+0000..U+001F; this guards the invariant for any other producer.
  const safe = json.replace(/[\u0002\u0003]/g, (c) => (c === "\u0002" ? "\\u0002" : "\\u0003"));
  const body = utf8Encoder.encode(safe);
  if (body.length > maxFrameBytes) throw new FrameTooLargeError(body.length, maxFrameBytes);
  const out = new Uint8Array(body.length + 2);
  out[0] = STX;
  out.set(body, 1);
  out[body.length + 1] = ETX;
  return out;
}

export class FrameTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`frame of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.name = "FrameTooLargeError";
  }
}

export class FrameDecoder {
  private readonly max: number;
  private chunks: Uint8Array[] = [];
  private size = 0;
  private inFrame = false;
  private skipping = false;
  private skipped = 0;
  private stray = 0;

  constructor(private readonly opts: FrameDecoderOptions) {
    this.max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes currently held for an incomplete frame (bounded by maxFrameBytes). */
  get buffered(): number {
    return this.size;
  }

  push(data: Uint8Array): void {
    let i = 0;
    const n = data.length;
    while (i < n) {
      if (!this.inFrame) {
        const stx = data.indexOf(STX, i);
        const end = stx < 0 ? n : stx;
        this.stray += end - i;
        if (stx < 0) return;
        this.flushStray();
        this.inFrame = true;
        i = stx + 1;
        continue;
      }
      // In a frame: find the next STX or ETX, whichever comes first.
      // indexOf is a native byte scan: several times faster than a JS loop.
      const etx = data.indexOf(ETX, i);
      const stx = data.indexOf(STX, i);
      const j = etx < 0 ? (stx < 0 ? n : stx) : stx < 0 ? etx : Math.min(etx, stx);
      this.take(data, i, j);
      if (j === n) return;
      if (data[j] === STX) {
        const lost = this.skipping ? this.skipped : this.size;
        this.reset();
        this.opts.onDrop({ reason: "nested_stx", bytes: lost, detail: "frame restarted by a new STX before its ETX" });
        this.inFrame = true;
      } else {
        this.finish();
      }
      i = j + 1;
    }
  }

  /** Bytes held when the stream ends are reported as dropped. */
  end(): void {
    this.flushStray();
    if (this.inFrame) {
      const lost = this.skipping ? this.skipped : this.size;
      this.reset();
      this.opts.onDrop({ reason: this.skipping ? "oversized" : "stray_bytes", bytes: lost, detail: "stream ended inside a frame" });
    }
  }

  private take(data: Uint8Array, from: number, to: number): void {
    const len = to - from;
    if (len === 0) return;
    if (this.skipping) {
      this.skipped += len;
      return;
    }
    if (this.size + len > this.max) {
      this.skipping = true;
      this.skipped = this.size + len;
      this.chunks = [];
      this.size = 0;
      return;
    }
    // Copy: the caller may reuse its buffer.
    this.chunks.push(data.slice(from, to));
    this.size += len;
  }

  private finish(): void {
    if (this.skipping) {
      const lost = this.skipped + 2;
      this.reset();
      this.opts.onDrop({ reason: "oversized", bytes: lost, detail: `frame exceeds the limit of ${this.max} bytes` });
      return;
    }
    const body = this.concat();
    this.reset();
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      this.opts.onDrop({ reason: "invalid_utf8", bytes: body.length + 2 });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.opts.onDrop({ reason: "invalid_json", bytes: body.length + 2, detail: (err as Error).message });
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.opts.onDrop({ reason: "not_an_object", bytes: body.length + 2 });
      return;
    }
    this.opts.onFrame(value as Record<string, unknown>);
  }

  private concat(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0]!;
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  private flushStray(): void {
    if (this.stray > 0) {
      const bytes = this.stray;
      this.stray = 0;
      this.opts.onDrop({ reason: "stray_bytes", bytes, detail: "bytes outside a frame" });
    }
  }

  private reset(): void {
    this.chunks = [];
    this.size = 0;
    this.inFrame = false;
    this.skipping = false;
    this.skipped = 0;
  }
}
