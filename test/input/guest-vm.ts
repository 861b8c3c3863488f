/**
 * One booted tiny guest (guest.ts) with the input devices a test asks for: its QMP socket,
 * the evdev devices it found, and every event evprint printed on the serial console.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { InputGuest } from "./guest.ts";
import { QEMU, waitFor } from "./qemu.ts";

export interface GuestEvent {
  dev: string;
  type: number;
  code: number;
  value: number;
  /** Host time (ms, performance.now()) when the test first saw the line. */
  seenAt?: number;
}

export interface BootedGuest {
  socketPath: string;
  devs: Map<number, string>;
  events(): GuestEvent[];
  /** Every console line so far. */
  lines(): string[];
  stop(): Promise<void>;
}

/** Boots the guest; resolves once evprint reports READY with at least `nevents` devices. */
export async function bootGuest(guest: InputGuest, dir: string, name: string, devices: string[], nevents: number, machine = "q35", append = ""): Promise<BootedGuest> {
  const consolePath = join(dir, `${name}.console`);
  const socketPath = join(dir, `${name}.qmp`);
  const proc = Bun.spawn(
    [QEMU, "-accel", "tcg", "-machine", machine, "-nodefaults", "-display", "none", "-m", "256", "-no-reboot",
      "-kernel", guest.kernel, "-initrd", guest.initrd, "-append", `console=ttyS0 quiet panic=-1 nevents=${nevents}${append ? ` ${append}` : ""}`,
      "-serial", `file:${consolePath}`, "-qmp", `unix:${socketPath},server=on,wait=off`, ...devices.flatMap((d) => ["-device", d])],
    { stdout: "ignore", stderr: "ignore" },
  );
  const lines = () => (existsSync(consolePath) ? readFileSync(consolePath, "utf8").split(/\r?\n/) : []);
  try {
    await waitFor(() => lines().some((l) => l.startsWith("READY")) || proc.exitCode !== null, 120_000, `guest ${name} to boot`);
  } catch (err) {
    proc.kill();
    throw err;
  }
  if (proc.exitCode !== null) throw new Error(`guest ${name} exited: ${lines().slice(-5).join(" | ")}`);
  const devs = new Map<number, string>();
  for (const l of lines()) {
    const m = l.match(/^DEV (\d+) (.*)$/);
    if (m) devs.set(Number(m[1]), (m[2] as string).trim());
  }
  return {
    socketPath,
    devs,
    lines,
    events: () =>
      lines().flatMap((l) => {
        const m = l.match(/^EV (\d+) (\d+) (\d+) (-?\d+)/);
        return m ? [{ dev: devs.get(Number(m[1])) ?? "?", type: Number(m[2]), code: Number(m[3]), value: Number(m[4]) }] : [];
      }),
    async stop() {
      proc.kill();
      await proc.exited;
    },
  };
}
