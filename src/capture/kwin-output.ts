/**
 * KWin as a host-output backend: per session zkde_screencast_unstable_v1.stream_virtual_output
 * gives a virtual output at the client's W×H and its PipeWire node; the Wayland connection is
 * held for the session and closing the stream removes the output.
 *
 * KWin offers zkde_screencast only to clients whose .desktop file names it in
 * X-KDE-Wayland-Interfaces, matched by the executable (build/neuron-appliance.desktop).
 */
import { randomBytes } from "node:crypto";
import { KwinScreencast, type HostOutputNative } from "../../ffi/hostout.ts";
import type { Availability, HostOutputBackend, HostSessionEnv, OutputMode, VirtualOutput } from "./host-output-contract.ts";
import { CaptureError } from "./source.ts";

const NOT_OFFERED =
  "offers no zkde_screencast_unstable_v1 to this process (KWin offers it only to executables whose .desktop file lists it in X-KDE-Wayland-Interfaces: install neuron-appliance.desktop; other compositors have none)";

export class KwinBackend implements HostOutputBackend {
  readonly name = "kwin" as const;
  constructor(
    private readonly native: HostOutputNative | null,
    private readonly env: HostSessionEnv,
  ) {}

  probe(): Availability {
    if (!this.native) return { available: false, reason: "the native library is not loaded" };
    const display = this.env.waylandDisplay;
    if (!display) {
      const installed = (this.env.which ?? Bun.which)("kwin_wayland");
      return { available: false, reason: installed ? "no Wayland display of the session is known (WAYLAND_DISPLAY of the desktop user)" : "KWin (kwin_wayland) is not installed" };
    }
    let k: KwinScreencast | null = null;
    try {
      k = KwinScreencast.open(this.native, display);
      const v = k.version();
      if (v === 0) return { available: false, reason: `the compositor at ${display} ${NOT_OFFERED}` };
      if (v < 2) return { available: false, reason: `KWin's zkde_screencast_unstable_v1 is version ${v}: stream_virtual_output needs 2` };
      return { available: true };
    } catch (err) {
      return { available: false, reason: (err as Error).message };
    } finally {
      k?.close();
    }
  }

  create(mode: OutputMode, timeoutMs: number): VirtualOutput {
    if (!this.native || !this.env.waylandDisplay) throw new CaptureError("HOST_OUTPUT_UNAVAILABLE", "KWin backend: no Wayland display of the session", { status: 503 });
    const k = KwinScreencast.open(this.native, this.env.waylandDisplay);
    const outputName = `neuron-${randomBytes(4).toString("hex")}`;
    try {
      const nodeId = k.streamVirtualOutput(outputName, mode.width, mode.height, "embedded", timeoutMs);
      return { nodeId, input: null, outputName, close: () => k.close() };
    } catch (err) {
      k.close();
      throw new CaptureError("HOST_OUTPUT_FAILED", `KWin stream_virtual_output: ${(err as Error).message}`, { status: 502, cause: err });
    }
  }
}
