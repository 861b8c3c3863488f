/**
 * The contract every host-output backend (host-output.ts, wlroots-output.ts,
 * gamescope-output.ts, kwin-output.ts) implements: a probed compositor interface that makes a
 * virtual output at the client's mode and hands back the PipeWire node that carries it.
 */

export interface OutputMode {
  width: number;
  height: number;
  fps: number;
}

/** Where the host's session lives: its session bus, PipeWire socket and binaries. */
export interface HostSessionEnv {
  /** The desktop session's D-Bus address (null: none known). */
  busAddress: string | null;
  /** The session's PipeWire socket (null: none known). */
  pipewireSocket: string | null;
  /** Resolves a binary on the session's PATH (Bun.which by default). */
  which?: (bin: string) => string | null;
  /** Directory of weston's plugins. */
  westonModuleDir?: string;
  /** sway's IPC socket ($SWAYSOCK of the session; null: none known). */
  swaySocket?: string | null;
  /** The session compositor's Wayland socket (a name in the runtime dir or an absolute path). */
  waylandDisplay?: string | null;
  /** xdg-desktop-portal-wlr's binary. */
  portalWlrBinary?: string;
  /** Where DRM render nodes live (/dev/dri). */
  driDir?: string;
  /** Where per-session helper directories are made (default: the system's temp dir). */
  runtimeDir?: string;
  /** gamescope without --headless may run nested, as a window in waylandDisplay (opt-in). */
  gamescopeNested?: boolean;
}

export interface Availability {
  available: boolean;
  reason?: string;
}

/** Input into the host's session at the virtual output's coordinates (evdev codes). */
export interface HostSessionInput {
  pointerAbsolute(x: number, y: number): void;
  pointerRelative(dx: number, dy: number): void;
  button(code: number, pressed: boolean): void;
  key(code: number, pressed: boolean): void;
  /** Wheel clicks; steps > 0 scroll down / right. */
  scroll(axis: "vertical" | "horizontal", steps: number): void;
  /** Smooth scroll in pixels (a high-resolution wheel); > 0 down / right. */
  scrollSmooth(dx: number, dy: number): void;
}

/** A created virtual output: the PipeWire node that carries it, gone on close(). */
export interface VirtualOutput {
  readonly nodeId: number;
  /** Present when the compositor takes input for the session (Mutter: a linked RemoteDesktop session). */
  readonly input: HostSessionInput | null;
  /** The compositor's name for the output, where it has one (sway: HEADLESS-N). */
  readonly outputName?: string;
  close(): void;
}

export interface HostOutputBackend {
  readonly name: "mutter" | "weston" | "kwin" | "gamescope" | "wlroots";
  probe(): Availability;
  create(mode: OutputMode, timeoutMs: number): VirtualOutput;
}
