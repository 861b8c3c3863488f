/**
 * The host's own desktop as a frame source: for each stream session a virtual output at
 * exactly the client's W×H@Hz, created through the compositor's own interface, its frames
 * read from PipeWire (native/hostout.h). One backend per compositor behind one probed
 * interface; the output is torn down when the session's source closes (close() or `using`).
 *
 *   mutter    org.gnome.Mutter.ScreenCast RecordVirtual (the output is sized by the stream's
 *             negotiated format, which offers only the client's mode)
 *   weston    headless + pipewire-plugin: probed; weston 10's plugin needs the DRM backend's
 *             virtual-output API, which headless does not offer
 *   wlroots   sway's create_output + a private xdg-desktop-portal-wlr for that output
 *             (wlroots-output.ts)
 *   gamescope a gamescope of its own per session at the mode (gamescope-output.ts)
 *   kwin      zkde_screencast_unstable_v1 stream_virtual_output (kwin-output.ts)
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HostOutputError, HostOutputNative as HostOutputNativeClass, MutterScreenCast, PwVideoStream, type HostOutputNative, type PwStats } from "../../ffi/hostout.ts";
import type { CursorInfo, ReaderStats } from "../../ffi/capture.ts";
import { CaptureError, type FrameEvent, type FrameSource } from "./source.ts";
import { GamescopeBackend } from "./gamescope-output.ts";
import { KwinBackend } from "./kwin-output.ts";
import { WlrootsBackend } from "./wlroots-output.ts";

import type { Availability, HostOutputBackend, HostSessionEnv, HostSessionInput, OutputMode, VirtualOutput } from "./host-output-contract.ts";

export type { Availability, HostOutputBackend, HostSessionEnv, HostSessionInput, OutputMode, VirtualOutput } from "./host-output-contract.ts";

const which = (env: HostSessionEnv, bin: string) => (env.which ?? Bun.which)(bin);

/** Mutter: ScreenCast RecordVirtual over a private connection held for the session. */
export class MutterBackend implements HostOutputBackend {
  readonly name = "mutter" as const;
  constructor(
    private readonly native: HostOutputNative | null,
    private readonly env: HostSessionEnv,
  ) {}

  probe(): Availability {
    if (!this.native) return { available: false, reason: "the native library is not loaded" };
    if (!this.env.busAddress) return { available: false, reason: "no desktop session bus is known (DBUS_SESSION_BUS_ADDRESS of the desktop user)" };
    if (!this.env.pipewireSocket || !existsSync(this.env.pipewireSocket))
      return { available: false, reason: `no PipeWire socket${this.env.pipewireSocket ? ` at ${this.env.pipewireSocket}` : ""}` };
    let sc: MutterScreenCast | null = null;
    try {
      sc = MutterScreenCast.open(this.native, this.env.busAddress);
      return sc.available() ? { available: true } : { available: false, reason: "org.gnome.Mutter.ScreenCast has no owner on the session bus (Mutter is not the running compositor)" };
    } catch (err) {
      return { available: false, reason: (err as Error).message };
    } finally {
      sc?.close();
    }
  }

  create(_mode: OutputMode, timeoutMs: number): VirtualOutput {
    if (!this.native || !this.env.busAddress) throw new CaptureError("HOST_OUTPUT_UNAVAILABLE", "Mutter backend: no session bus", { status: 503 });
    const sc = MutterScreenCast.open(this.native, this.env.busAddress);
    try {
      // input through a RemoteDesktop session linked to this stream, where Mutter offers one
      const withInput = sc.hasOwner("org.gnome.Mutter.RemoteDesktop");
      if (withInput) sc.enableInput(timeoutMs);
      const nodeId = sc.recordVirtual(1, timeoutMs); // cursor embedded: the client sees it in the frames
      return { nodeId, input: withInput ? sc : null, close: () => sc.close() };
    } catch (err) {
      sc.close();
      throw new CaptureError("HOST_OUTPUT_FAILED", `Mutter RecordVirtual: ${(err as Error).message}`, { status: 502, cause: err });
    }
  }
}

/** A backend this build only probes: its compositor's presence, and why it cannot serve. */
class ProbedOnlyBackend implements HostOutputBackend {
  constructor(
    readonly name: "weston",
    private readonly check: () => Availability,
  ) {}
  probe(): Availability {
    return this.check();
  }
  create(): VirtualOutput {
    const a = this.check();
    throw new CaptureError("HOST_OUTPUT_UNAVAILABLE", `${this.name}: ${a.reason ?? "unavailable"}`, { status: 503 });
  }
}

/** Every backend, in the order they are tried. */
export function hostOutputBackends(native: HostOutputNative | null, env: HostSessionEnv): HostOutputBackend[] {
  const moduleDir = env.westonModuleDir ?? "/usr/lib/x86_64-linux-gnu/libweston-10";
  return [
    new MutterBackend(native, env),
    new ProbedOnlyBackend("weston", () => {
      if (!which(env, "weston")) return { available: false, reason: "weston is not installed" };
      if (!existsSync(join(moduleDir, "pipewire-plugin.so"))) return { available: false, reason: `weston's pipewire-plugin.so is not in ${moduleDir}` };
      return { available: false, reason: "weston 10's pipewire-plugin creates outputs only through the DRM backend's virtual-output API; the headless backend has none, and outputs are fixed in weston.ini, not per session" };
    }),
    new KwinBackend(native, env),
    new GamescopeBackend(env),
    new WlrootsBackend(native, env),
  ];
}

/** Picks the first backend whose probe passes, with every backend's reason. */
export function chooseHostOutputBackend(backends: HostOutputBackend[]): {
  backend: HostOutputBackend | null;
  reason: string;
  candidates: { name: string; available: boolean; reason?: string }[];
} {
  const candidates = backends.map((b) => ({ name: b.name, ...b.probe() }));
  const i = candidates.findIndex((c) => c.available);
  if (i < 0) return { backend: null, reason: `no compositor offers a virtual output: ${candidates.map((c) => `${c.name}: ${c.reason}`).join("; ")}`, candidates };
  return { backend: backends[i]!, reason: `${candidates[i]!.name} is the running compositor`, candidates };
}

const NO_CURSOR: CursorInfo = { x: 0, y: 0, visible: false, shapeSerial: 0, shapeWidth: 0, shapeHeight: 0, shapeType: 0, updates: 0 };

/** FrameSource over a per-session virtual output; close() removes the output. */
export class HostVirtualOutputSource implements FrameSource, Disposable {
  readonly kind = "host-virtual-output";
  private output: VirtualOutput | null = null;
  private stream: PwVideoStream | null = null;
  private gone = false;

  constructor(
    private readonly native: HostOutputNative,
    private readonly backend: HostOutputBackend,
    readonly mode: OutputMode,
    private readonly pipewireSocket: string | null,
    private readonly negotiateTimeoutMs = 3000,
  ) {}

  attach(timeoutMs: number): void {
    if (this.stream) return;
    this.output = this.backend.create(this.mode, timeoutMs);
    try {
      this.stream = PwVideoStream.open(this.native, {
        remote: this.pipewireSocket,
        nodeId: this.output.nodeId,
        ...this.mode,
        negotiateTimeoutMs: Math.min(timeoutMs, this.negotiateTimeoutMs),
      });
    } catch (err) {
      this.output.close();
      this.output = null;
      throw new CaptureError("HOST_OUTPUT_FAILED", `${this.backend.name}: ${(err as HostOutputError).message}`, { status: 502, cause: err });
    }
  }

  /** The PipeWire stream, for the native encode pipeline (CapturePipeline.startFromStream). */
  get pwStream(): PwVideoStream {
    if (!this.stream) throw new CaptureError("CAPTURE_NOT_ATTACHED", "the host output is not attached", { status: 409 });
    return this.stream;
  }

  get nodeId(): number | null {
    return this.output?.nodeId ?? null;
  }

  /** Input into the host's session for this output (null: the backend takes none; see hostInputCapability). */
  get input(): HostSessionInput | null {
    return this.output?.input ?? null;
  }

  next(dst: Uint8Array, timeoutMs: number): FrameEvent {
    if (!this.stream) throw new CaptureError("CAPTURE_NOT_ATTACHED", "the host output is not attached", { status: 409 });
    if (this.gone) {
      Bun.sleepSync(Math.min(timeoutMs, 50));
      return { kind: "timeout" };
    }
    const r = this.stream.nextFrame(dst, timeoutMs);
    if (r.event === "frame") return { kind: "frame", info: r.info! };
    if (r.event === "too-small")
      throw new CaptureError("CAPTURE_BUFFER_TOO_SMALL", `frame needs ${r.info?.bytes} bytes, buffer has ${dst.length}`, { status: 500 });
    if (r.event === "error") this.gone = true; // the compositor went away: bounded timeouts from now on
    return { kind: "timeout" };
  }

  cursor(): CursorInfo {
    return NO_CURSOR; // embedded in the frames
  }

  pwStats(): PwStats | null {
    return this.stream?.stats() ?? null;
  }

  stats(): ReaderStats {
    const s = this.stream?.stats();
    return {
      frames: s?.frames ?? 0,
      rejected: s?.corrupted ?? 0,
      resubscribes: 0,
      restarts: 0,
      wpTimeouts: 0,
      cursorUpdates: 0,
      sessionId: this.output?.nodeId ?? 0,
      lgmpVersion: 0,
      kvmfrVersion: 0,
      attached: s?.state === "streaming",
    };
  }

  close(): void {
    this.stream?.close();
    this.stream = null;
    this.output?.close();
    this.output = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens the host's desktop for one session: the first backend whose probe passes, a virtual
 * output at the mode, attached (bounded). The HostOutputNative is loaded on first use.
 */
export function hostDesktopOpener(
  nativePath: string,
  session: () => HostSessionEnv,
  log?: { info(msg: string, fields?: Record<string, unknown>): void },
): (mode: OutputMode) => HostVirtualOutputSource {
  let native: HostOutputNative | null = null;
  return (mode) => {
    native ??= new HostOutputNativeClass(nativePath);
    const env = session();
    const choice = chooseHostOutputBackend(hostOutputBackends(native, env));
    if (!choice.backend) throw new CaptureError("HOST_OUTPUT_UNAVAILABLE", choice.reason, { status: 503 });
    const source = new HostVirtualOutputSource(native, choice.backend, mode, env.pipewireSocket);
    source.attach(5000);
    log?.info("host desktop output created", { backend: choice.backend.name, node: source.nodeId, mode: `${mode.width}x${mode.height}@${mode.fps}` });
    return source;
  };
}

export interface HostInputCapability {
  /** How input reaches the host's session: the compositor's RemoteDesktop interface, libei through the portal, uinput, or none. */
  backend: "remote-desktop" | "libei" | "uinput" | "none";
  reason: string;
  candidates: { backend: "remote-desktop" | "libei" | "uinput"; available: boolean; reason: string }[];
}

/** Input for the host session: Mutter's RemoteDesktop, else libei via the RemoteDesktop portal, else uinput. */
export function hostInputCapability(native: HostOutputNative | null, env: HostSessionEnv, uinputDevice: string): HostInputCapability {
  let rd = { available: false, reason: "no desktop session bus is known" };
  let ei = { available: false, reason: "no desktop session bus is known" };
  if (native && env.busAddress) {
    let bus: MutterScreenCast | null = null;
    try {
      bus = MutterScreenCast.open(native, env.busAddress);
      rd = bus.hasOwner("org.gnome.Mutter.RemoteDesktop")
        ? { available: true, reason: "Mutter's org.gnome.Mutter.RemoteDesktop, linked to each stream's ScreenCast session (keyboard, pointer, buttons and wheel from the stream client)" }
        : { available: false, reason: "org.gnome.Mutter.RemoteDesktop has no owner on the session bus" };
      ei = bus.hasOwner("org.freedesktop.portal.Desktop")
        ? { available: false, reason: "the desktop portal runs; its RemoteDesktop.ConnectToEIS needs the user's consent and libei, not part of this build" }
        : { available: false, reason: "no xdg-desktop-portal on the session bus (libei is reached through its RemoteDesktop portal)" };
    } catch (err) {
      rd = ei = { available: false, reason: (err as Error).message };
    } finally {
      bus?.close();
    }
  } else if (!native) rd = ei = { available: false, reason: "the native library is not loaded" };
  const ui = existsSync(uinputDevice)
    ? { available: true, reason: `${uinputDevice} (virtual devices the compositor picks up like real ones)` }
    : { available: false, reason: `no ${uinputDevice}` };
  const candidates = [
    { backend: "remote-desktop" as const, ...rd },
    { backend: "libei" as const, ...ei },
    { backend: "uinput" as const, ...ui },
  ];
  const first = candidates.find((c) => c.available);
  return first
    ? { backend: first.backend, reason: first.reason, candidates }
    : { backend: "none", reason: `no input path into the host session: ${candidates.map((c) => `${c.backend}: ${c.reason}`).join("; ")}`, candidates };
}
