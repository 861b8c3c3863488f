/** bun:ffi bindings of native/audio.h: the Opus encoder (and its verification decoder). */
import { FFIType, ptr, type FFIFunction, type Pointer } from "bun:ffi";
import { check, outPtr } from "./capture.ts";
import { NativeModule } from "./native.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_opus_encoder_open: { args: [P, P], returns: FFIType.i32 },
  neuron_opus_encoder_open_layout: { args: [P, P, P], returns: FFIType.i32 },
  neuron_opus_encoder_layout: { args: [P, P], returns: FFIType.void },
  neuron_opus_encode: { args: [P, P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_opus_encoder_close: { args: [P], returns: FFIType.void },
  neuron_opus_decoder_open: { args: [FFIType.u32, P, P], returns: FFIType.i32 },
  neuron_opus_decode: { args: [P, P, FFIType.u32, P, FFIType.u32], returns: FFIType.i32 },
  neuron_opus_decoder_close: { args: [P], returns: FFIType.void },
} as const satisfies Record<string, FFIFunction>;

export interface OpusLayout {
  streams: number;
  coupled: number;
  mapping: number[];
}

export interface OpusOptions {
  channels: 2 | 6 | 8;
  bitrateBps: number;
  /** Samples per channel per frame: 240 = 5 ms at 48 kHz. */
  frameSamples?: 120 | 240 | 480 | 960;
}

export class AudioNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }
}

export class OpusEncoder {
  private handle: Pointer | null;
  readonly layout: OpusLayout;
  readonly frameSamples: number;

  private constructor(
    private readonly n: AudioNative,
    handle: Pointer,
    readonly channels: number,
    frameSamples: number,
  ) {
    this.handle = handle;
    this.frameSamples = frameSamples;
    const buf = new Uint8Array(16);
    n.sym.neuron_opus_encoder_layout(handle, ptr(buf));
    const v = new DataView(buf.buffer);
    this.layout = { streams: v.getUint32(0, true), coupled: v.getUint32(4, true), mapping: [...buf.subarray(8, 8 + channels)] };
  }

  static open(n: AudioNative, o: OpusOptions): OpusEncoder {
    const cfg = new Uint32Array([48000, o.channels, o.bitrateBps, o.frameSamples ?? 240]);
    const cell = new BigUint64Array(1);
    check("neuron_opus_encoder_open", n.sym.neuron_opus_encoder_open(ptr(cfg), ptr(cell)));
    return new OpusEncoder(n, outPtr(cell), o.channels, o.frameSamples ?? 240);
  }

  /**
   * An encoder with an explicit multistream layout (input channels in the client's
   * order; mapping[c] = coded channel of input channel c), e.g. GameStream's surround-params.
   */
  static openLayout(n: AudioNative, o: OpusOptions, layout: OpusLayout): OpusEncoder {
    const cfg = new Uint32Array([48000, o.channels, o.bitrateBps, o.frameSamples ?? 240]);
    const lay = new Uint8Array(16);
    const v = new DataView(lay.buffer);
    v.setUint32(0, layout.streams, true);
    v.setUint32(4, layout.coupled, true);
    if (layout.mapping.length !== o.channels) throw new RangeError(`mapping needs ${o.channels} entries`);
    lay.set(layout.mapping, 8);
    const cell = new BigUint64Array(1);
    check("neuron_opus_encoder_open_layout", n.sym.neuron_opus_encoder_open_layout(ptr(cfg), ptr(lay), ptr(cell)));
    return new OpusEncoder(n, outPtr(cell), o.channels, o.frameSamples ?? 240);
  }

  /** Encodes one frame of interleaved s16 PCM (frameSamples * channels values) into out; returns bytes. */
  encode(pcm: Int16Array, out: Uint8Array): number {
    if (this.handle === null) throw new Error("encoder is closed");
    if (pcm.length !== this.frameSamples * this.channels) throw new RangeError(`a frame is ${this.frameSamples * this.channels} samples`);
    const rc = this.n.sym.neuron_opus_encode(this.handle, ptr(pcm), ptr(out), out.length);
    check("neuron_opus_encode", rc);
    return rc;
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_opus_encoder_close(this.handle);
    this.handle = null;
  }
}

export class OpusDecoder {
  private handle: Pointer | null;
  private constructor(
    private readonly n: AudioNative,
    handle: Pointer,
    readonly channels: number,
  ) {
    this.handle = handle;
  }

  static open(n: AudioNative, channels: number, layout: OpusLayout): OpusDecoder {
    const buf = new Uint8Array(16);
    const v = new DataView(buf.buffer);
    v.setUint32(0, layout.streams, true);
    v.setUint32(4, layout.coupled, true);
    buf.set(layout.mapping.slice(0, 8), 8);
    const cell = new BigUint64Array(1);
    check("neuron_opus_decoder_open", n.sym.neuron_opus_decoder_open(channels, ptr(buf), ptr(cell)));
    return new OpusDecoder(n, outPtr(cell), channels);
  }

  /** Decodes a packet into pcm; returns samples per channel. */
  decode(packet: Uint8Array, pcm: Int16Array): number {
    if (this.handle === null) throw new Error("decoder is closed");
    const rc = this.n.sym.neuron_opus_decode(this.handle, ptr(packet), packet.length, ptr(pcm), Math.floor(pcm.length / this.channels));
    check("neuron_opus_decode", rc);
    return rc;
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_opus_decoder_close(this.handle);
    this.handle = null;
  }
}
