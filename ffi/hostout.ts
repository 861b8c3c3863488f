/**
 * bun:ffi bindings of native/hostout.h: Mutter's ScreenCast D-Bus session (a virtual
 * output per handle), a portal implementation's ScreenCast backend interface, and the
 * PipeWire consumer of a node. Handles are owned here.
 */
import { CString, FFIType, ptr, type FFIFunction, type Pointer } from "bun:ffi";
import { NativeModule } from "./native.ts";
import { cstr, outPtr, parseFrameInfo, type FrameInfo } from "./capture.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_pw_stream_open: { args: [P, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_pw_last_error: { args: [], returns: P },
  neuron_pw_stream_next_frame: { args: [P, FFIType.u32, P, FFIType.u64, P], returns: FFIType.i32 },
  neuron_pw_stream_stats: { args: [P, P], returns: FFIType.void },
  neuron_pw_stream_error: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_pw_stream_close: { args: [P], returns: FFIType.void },
  neuron_mutter_open: { args: [P, P], returns: FFIType.i32 },
  neuron_mutter_available: { args: [P], returns: FFIType.i32 },
  neuron_mutter_name_has_owner: { args: [P, P], returns: FFIType.i32 },
  neuron_mutter_record_virtual: { args: [P, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_mutter_stop: { args: [P], returns: FFIType.i32 },
  neuron_mutter_enable_input: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_mutter_pointer_absolute: { args: [P, FFIType.f64, FFIType.f64], returns: FFIType.i32 },
  neuron_mutter_pointer_button: { args: [P, FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  neuron_mutter_key: { args: [P, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  neuron_mutter_pointer_relative: { args: [P, FFIType.f64, FFIType.f64], returns: FFIType.i32 },
  neuron_mutter_pointer_axis_discrete: { args: [P, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  neuron_mutter_pointer_axis: { args: [P, FFIType.f64, FFIType.f64, FFIType.u32], returns: FFIType.i32 },
  neuron_mutter_error: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_mutter_close: { args: [P], returns: FFIType.void },
  neuron_xdp_open: { args: [P, P, P], returns: FFIType.i32 },
  neuron_xdp_available: { args: [P], returns: FFIType.i32 },
  neuron_xdp_start: { args: [P, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_xdp_stop: { args: [P], returns: FFIType.i32 },
  neuron_xdp_error: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_xdp_close: { args: [P], returns: FFIType.void },
  neuron_kwin_open: { args: [P, P], returns: FFIType.i32 },
  neuron_kwin_available: { args: [P], returns: FFIType.i32 },
  neuron_kwin_stream_virtual_output: { args: [P, P, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_kwin_stream_output: { args: [P, P, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_kwin_error: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_kwin_close: { args: [P], returns: FFIType.void },
} as const satisfies Record<string, FFIFunction>;

export class HostOutputNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }
}

export class HostOutputError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HostOutputError";
  }
}

const errText = (fn: (buf: Uint8Array) => number): string => {
  const buf = new Uint8Array(512);
  const n = fn(buf);
  return new TextDecoder().decode(buf.subarray(0, Math.max(0, n)));
};

export interface PwStats {
  frames: number;
  buffers: number;
  corrupted: number;
  width: number;
  height: number;
  fpsNum: number;
  fpsDen: number;
  memory: "none" | "shm" | "dmabuf";
  state: "connecting" | "negotiated" | "streaming" | "error" | "gone";
  spaFormat: number;
}

const STATES = ["connecting", "negotiated", "streaming", "error", "gone"] as const;
const MEMORY = ["none", "shm", "dmabuf"] as const;

export class PwVideoStream {
  private handle: Pointer | null;
  private readonly infoBuf = new Uint8Array(1120);
  private readonly statsBuf = new Uint8Array(56);

  private constructor(
    private readonly n: HostOutputNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  /** Connects to node `nodeId`; `remote` is the PipeWire socket path (null: the environment's default). */
  static open(n: HostOutputNative, o: { remote: string | null; nodeId: number; width: number; height: number; fps: number; negotiateTimeoutMs: number }): PwVideoStream {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_pw_stream_open(o.remote ? cstr(o.remote) : null, o.nodeId, o.width, o.height, o.fps, o.negotiateTimeoutMs, ptr(cell));
    if (rc < 0) {
      const p = n.sym.neuron_pw_last_error();
      throw new HostOutputError(rc, (p ? new CString(p).toString() : "") || `PipeWire stream open failed (status ${rc})`);
    }
    return new PwVideoStream(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("stream is closed");
    return this.handle;
  }

  /** The native stream, for the encode pipeline (CapturePipeline.startFromStream) that borrows it. */
  get nativeHandle(): Pointer {
    return this.h();
  }

  nextFrame(dst: Uint8Array, timeoutMs: number): { event: "frame" | "timeout" | "too-small" | "error"; info: FrameInfo | null; status: number } {
    const rc = this.n.sym.neuron_pw_stream_next_frame(this.h(), timeoutMs, ptr(dst), dst.length, ptr(this.infoBuf));
    if (rc === 0) return { event: "frame", info: parseFrameInfo(this.infoBuf), status: rc };
    if (rc === 1) return { event: "timeout", info: null, status: rc };
    if (rc === -5) return { event: "too-small", info: parseFrameInfo(this.infoBuf), status: rc };
    return { event: "error", info: null, status: rc };
  }

  stats(): PwStats {
    this.n.sym.neuron_pw_stream_stats(this.h(), ptr(this.statsBuf));
    const v = new DataView(this.statsBuf.buffer);
    const u = (o: number) => v.getUint32(o, true);
    return {
      frames: Number(v.getBigUint64(0, true)),
      buffers: Number(v.getBigUint64(8, true)),
      corrupted: Number(v.getBigUint64(16, true)),
      width: u(24),
      height: u(28),
      fpsNum: u(32),
      fpsDen: u(36),
      memory: MEMORY[u(40)] ?? "none",
      state: STATES[u(44)] ?? "error",
      spaFormat: u(48),
    };
  }

  error(): string {
    return errText((b) => this.n.sym.neuron_pw_stream_error(this.h(), ptr(b), b.length));
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_pw_stream_close(this.handle);
    this.handle = null;
  }
}

/** One Mutter ScreenCast session with one virtual stream. */
export class MutterScreenCast {
  private handle: Pointer | null;

  private constructor(
    private readonly n: HostOutputNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  /** A private connection to the session bus at `address` (null: $DBUS_SESSION_BUS_ADDRESS). */
  static open(n: HostOutputNative, address: string | null): MutterScreenCast {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_mutter_open(address ? cstr(address) : null, ptr(cell));
    if (rc < 0) throw new HostOutputError(rc, address ? `cannot connect to the session bus at ${address}` : "no session bus ($DBUS_SESSION_BUS_ADDRESS is not set or unreachable)");
    return new MutterScreenCast(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("screencast session is closed");
    return this.handle;
  }

  available(): boolean {
    return this.n.sym.neuron_mutter_available(this.h()) === 1;
  }

  /** Whether a well-known name has an owner on this bus. */
  hasOwner(name: string): boolean {
    return this.n.sym.neuron_mutter_name_has_owner(this.h(), cstr(name)) === 1;
  }

  /** Creates the virtual output and returns its PipeWire node id. */
  recordVirtual(cursorMode: 0 | 1 | 2, timeoutMs: number): number {
    const cell = new Uint32Array(1);
    const rc = this.n.sym.neuron_mutter_record_virtual(this.h(), cursorMode, timeoutMs, ptr(cell));
    if (rc < 0) throw new HostOutputError(rc, this.error() || `RecordVirtual failed (status ${rc})`);
    return cell[0]!;
  }

  stop(): void {
    if (this.handle !== null) this.n.sym.neuron_mutter_stop(this.handle);
  }

  /** Links a RemoteDesktop session to the stream recorded next (input into the host's session). */
  enableInput(timeoutMs: number): void {
    const rc = this.n.sym.neuron_mutter_enable_input(this.h(), timeoutMs);
    if (rc < 0) throw new HostOutputError(rc, this.error() || `RemoteDesktop session failed (status ${rc})`);
  }

  /** Pointer to (x, y) in the virtual output's pixels. */
  pointerAbsolute(x: number, y: number): void {
    const rc = this.n.sym.neuron_mutter_pointer_absolute(this.h(), x, y);
    if (rc < 0) throw new HostOutputError(rc, "pointer motion refused (input not enabled or session not started)");
  }

  /** A button (evdev BTN_*, e.g. 0x110 left) press or release. */
  button(code: number, pressed: boolean): void {
    const rc = this.n.sym.neuron_mutter_pointer_button(this.h(), code, pressed ? 1 : 0);
    if (rc < 0) throw new HostOutputError(rc, "button refused (input not enabled or session not started)");
  }

  /** A key (evdev KEY_*) press or release. */
  key(code: number, pressed: boolean): void {
    const rc = this.n.sym.neuron_mutter_key(this.h(), code, pressed ? 1 : 0);
    if (rc < 0) throw new HostOutputError(rc, "key refused (input not enabled or session not started)");
  }

  /** Relative pointer motion (pixels). */
  pointerRelative(dx: number, dy: number): void {
    const rc = this.n.sym.neuron_mutter_pointer_relative(this.h(), dx, dy);
    if (rc < 0) throw new HostOutputError(rc, "pointer motion refused (input not enabled or session not started)");
  }

  /** Wheel clicks: vertical (steps > 0 scroll down) or horizontal (steps > 0 scroll right). */
  scroll(axis: "vertical" | "horizontal", steps: number): void {
    const rc = this.n.sym.neuron_mutter_pointer_axis_discrete(this.h(), axis === "vertical" ? 0 : 1, steps | 0);
    if (rc < 0) throw new HostOutputError(rc, "scroll refused (input not enabled or session not started)");
  }

  /** Smooth scroll in pixels (source "continuous": a high-resolution wheel's fraction of a click). */
  scrollSmooth(dx: number, dy: number): void {
    const rc = this.n.sym.neuron_mutter_pointer_axis(this.h(), dx, dy, 1 << 3 /* source: continuous */);
    if (rc < 0) throw new HostOutputError(rc, "scroll refused (input not enabled or session not started)");
  }

  error(): string {
    return errText((b) => this.n.sym.neuron_mutter_error(this.h(), ptr(b), b.length));
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_mutter_close(this.handle);
    this.handle = null;
  }
}

/** One ScreenCast session on an xdg-desktop-portal implementation's backend interface. */
export class PortalScreenCast {
  private handle: Pointer | null;

  private constructor(
    private readonly n: HostOutputNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  /** A private connection to the bus at `address`, for the implementation owning `busName`. */
  static open(n: HostOutputNative, address: string, busName: string): PortalScreenCast {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_xdp_open(cstr(address), cstr(busName), ptr(cell));
    if (rc < 0) throw new HostOutputError(rc, `cannot connect to the bus at ${address} (for ${busName})`);
    return new PortalScreenCast(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("portal session is closed");
    return this.handle;
  }

  /** Whether the implementation's name has an owner on the bus. */
  available(): boolean {
    return this.n.sym.neuron_xdp_available(this.h()) === 1;
  }

  /** CreateSession, SelectSources (one monitor), Start: the stream's PipeWire node id. */
  start(cursorMode: "hidden" | "embedded" | "metadata", timeoutMs: number): number {
    const cell = new Uint32Array(1);
    const mode = cursorMode === "hidden" ? 1 : cursorMode === "embedded" ? 2 : 4;
    const rc = this.n.sym.neuron_xdp_start(this.h(), mode, timeoutMs, ptr(cell));
    if (rc < 0) throw new HostOutputError(rc, this.error() || `portal ScreenCast failed (status ${rc})`);
    return cell[0]!;
  }

  error(): string {
    return errText((b) => this.n.sym.neuron_xdp_error(this.h(), ptr(b), b.length));
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_xdp_close(this.handle);
    this.handle = null;
  }
}

/** One KWin zkde_screencast virtual-output stream over a Wayland connection held for the session. */
export class KwinScreencast {
  private handle: Pointer | null;

  private constructor(
    private readonly n: HostOutputNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  /** Connects to the Wayland display (socket name or absolute path). */
  static open(n: HostOutputNative, display: string): KwinScreencast {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_kwin_open(cstr(display), ptr(cell));
    if (rc < 0) throw new HostOutputError(rc, `cannot connect to the Wayland display ${display}`);
    return new KwinScreencast(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("KWin screencast is closed");
    return this.handle;
  }

  /** The zkde_screencast_unstable_v1 version offered to this client (0: none). */
  version(): number {
    return this.n.sym.neuron_kwin_available(this.h());
  }

  /** A virtual output `name` at width x height; its PipeWire node id. */
  streamVirtualOutput(name: string, width: number, height: number, cursor: "hidden" | "embedded" | "metadata", timeoutMs: number): number {
    const cell = new Uint32Array(1);
    const pointer = cursor === "hidden" ? 1 : cursor === "embedded" ? 2 : 4;
    const rc = this.n.sym.neuron_kwin_stream_virtual_output(this.h(), cstr(name), width, height, pointer, timeoutMs, ptr(cell));
    if (rc < 0) throw new HostOutputError(rc, this.error() || `stream_virtual_output failed (status ${rc})`);
    return cell[0]!;
  }

  /** An existing output, by its wl_output name; its PipeWire node id. */
  streamOutput(outputName: string, cursor: "hidden" | "embedded" | "metadata", timeoutMs: number): number {
    const cell = new Uint32Array(1);
    const pointer = cursor === "hidden" ? 1 : cursor === "embedded" ? 2 : 4;
    const rc = this.n.sym.neuron_kwin_stream_output(this.h(), cstr(outputName), pointer, timeoutMs, ptr(cell));
    if (rc < 0) throw new HostOutputError(rc, this.error() || `stream_output failed (status ${rc})`);
    return cell[0]!;
  }

  error(): string {
    return errText((b) => this.n.sym.neuron_kwin_error(this.h(), ptr(b), b.length));
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_kwin_close(this.handle);
    this.handle = null;
  }
}
