/**
 * A framed message channel over any byte stream (unix socket, TLS socket,
 * virtio-serial port): frames out, classified messages in, drops logged.
 * Shared by the host client and the in-guest service.
 */
import type { Duplex } from "node:stream";
import type { Logger } from "../log.ts";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, type FrameDrop } from "./framing.ts";
import { classify, type Incoming } from "./model.ts";

export interface ChannelOptions {
  maxFrameBytes?: number;
  log: Logger;
  onMessage: (msg: Exclude<Incoming, { kind: "invalid" }>) => void;
  onClose: (reason: string) => void;
  /** Called for every dropped frame or invalid message (after it is logged). */
  onDrop?: (drop: FrameDrop | { reason: "invalid_message"; bytes: number; detail: string }) => void;
}

export class FramedChannel {
  private readonly decoder: FrameDecoder;
  private readonly max: number;
  private closed = false;
  dropped = 0;

  constructor(
    private readonly stream: Duplex,
    private readonly opts: ChannelOptions,
  ) {
    this.max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.decoder = new FrameDecoder({
      maxFrameBytes: this.max,
      onFrame: (value) => {
        const m = classify(value);
        if (m.kind === "invalid") {
          this.dropped++;
          opts.log.error("agent message dropped", { reason: "invalid_message", detail: m.reason });
          opts.onDrop?.({ reason: "invalid_message", bytes: 0, detail: m.reason });
          return;
        }
        opts.onMessage(m);
      },
      onDrop: (drop) => {
        this.dropped++;
        opts.log.error("agent frame dropped", { reason: drop.reason, bytes: drop.bytes, detail: drop.detail });
        opts.onDrop?.(drop);
      },
    });
    stream.on("data", (chunk: Buffer | string) => {
      if (this.closed) return;
      this.decoder.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    });
    stream.on("error", (err: Error) => this.finish(`stream error: ${err.message}`));
    stream.on("end", () => this.finish("peer closed the stream"));
    stream.on("close", () => this.finish("stream closed"));
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.decoder.buffered;
  }

  /** Sends one message; throws FrameTooLargeError for a message over the bound (nothing is sent). */
  send(message: unknown): void {
    if (this.closed) throw new Error("channel is closed");
    this.stream.write(encodeFrame(message, this.max));
  }

  close(): void {
    this.finish("closed locally");
    this.stream.destroy();
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.end();
    this.opts.onClose(reason);
  }
}
