/**
 * A real QEMU for input tests: q35 under TCG, no disks, virtio keyboard, mouse
 * and tablet, a QMP unix socket, and QEMU's own `input_event_*` trace events
 * written to a file — the QEMU-side record of what its input layer received.
 */
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { testConfig } from "../helpers/env.ts";

export const QEMU = testConfig().bin.qemuSystem;

export function qemuAvailable(): boolean {
  return Bun.which(QEMU) !== null;
}

export interface TestQemu {
  socketPath: string;
  /** A second QMP monitor for the test itself (QEMU serves one client per monitor). */
  controlPath: string;
  tracePath: string;
  pid: number;
  /** Parsed trace lines so far. */
  trace(): TraceEvent[];
  stop(): Promise<void>;
}

export type TraceEvent =
  | { ev: "key"; qcode: string; down: boolean }
  | { ev: "btn"; button: string; down: boolean }
  | { ev: "rel" | "abs"; axis: string; value: number }
  | { ev: "sync" };

export function parseTrace(text: string): TraceEvent[] {
  const out: TraceEvent[] = [];
  for (const line of text.split("\n")) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/input_event_key_qcode con -?\d+, key qcode (\S+), down (\d)/))) {
      out.push({ ev: "key", qcode: m[1] as string, down: m[2] === "1" });
    } else if ((m = line.match(/input_event_btn con -?\d+, button (\S+), down (\d)/))) {
      out.push({ ev: "btn", button: m[1] as string, down: m[2] === "1" });
    } else if ((m = line.match(/input_event_(rel|abs) con -?\d+, axis (\S+), value (0x[0-9a-f]+|-?\d+)/))) {
      out.push({ ev: m[1] as "rel" | "abs", axis: m[2] as string, value: Number.parseInt(m[3] as string) | 0 });
    } else if (line.includes("input_event_sync")) {
      out.push({ ev: "sync" });
    }
  }
  return out;
}

async function canConnect(path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  return new Promise((resolve) => {
    const s = connect({ path });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 500);
    s.once("data", () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** Start QEMU; the socket and trace live in `dir`. */
export async function startQemu(dir: string, name = "vm", opts: { traceName?: string } = {}): Promise<TestQemu> {
  const socketPath = join(dir, `${name}.qmp`);
  const controlPath = join(dir, `${name}.ctl`);
  const tracePath = join(dir, `${opts.traceName ?? name}.trace`);
  const args = [
    QEMU,
    "-accel", "tcg",
    "-machine", "q35",
    "-nodefaults",
    "-display", "none",
    "-m", "64",
    "-qmp", `unix:${socketPath},server=on,wait=off`,
    "-qmp", `unix:${controlPath},server=on,wait=off`,
    "-device", "virtio-keyboard-pci",
    "-device", "virtio-mouse-pci",
    "-device", "virtio-tablet-pci",
    "-trace", `enable=input_event_*,file=${tracePath}`,
  ];
  const proc = Bun.spawn(args, { stdout: "ignore", stderr: "pipe" });
  const deadline = Date.now() + 10_000;
  // QEMU's QMP server takes one client at a time, and a backend may already be reconnecting to
  // the main socket: greet on the control socket only; both exist once it answers.
  while (!existsSync(socketPath) || !(await canConnect(controlPath))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill();
      const err = await new Response(proc.stderr).text();
      throw new Error(`QEMU did not open its QMP socket: ${err.trim()}`);
    }
    await Bun.sleep(20);
  }
  await Bun.sleep(20);
  return {
    socketPath,
    controlPath,
    tracePath,
    pid: proc.pid,
    trace: () => (existsSync(tracePath) ? parseTrace(readFileSync(tracePath, "utf8")) : []),
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** Poll `cond` until true or the bound passes. */
export async function waitFor(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}
