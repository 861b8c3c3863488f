/**
 * Reading a tiny guest's evdev devices back through its agent: readers started with
 * launch_app copy each event node's bytes to /tmp/ev_<node>, and the agent's clipboard
 * command (GUEST_CAPTURE_COMMAND) returns them with the readers' ready marks and the
 * number of uhid devices. Events keep the guest's timestamps (CLOCK_REALTIME, µs).
 */
import type { AgentClient } from "../../src/guest/client.ts";

export const GUEST_CAPTURE_COMMAND = [
  "sh",
  "-c",
  "cd /tmp; for f in ready_*; do [ -f $f ] && echo \"R ${f#ready_}\"; done; for f in ev_*; do [ -f $f ] && { echo \"E ${f#ev_}\"; od -An -v -tx1 $f; }; done; echo U $(ls /sys/devices/virtual/misc/uhid/ 2>/dev/null | grep -c :); for e in /sys/class/input/event*; do [ -e $e ] && echo \"N ${e##*/} $(cat $e/device/name)\"; done; true",
];

/** The agent config of a guest read this way (no other OS commands). */
export const CAPTURE_AGENT_CONFIG = {
  certDir: "/agent/certs",
  pollMs: 0,
  commandTimeoutMs: 20_000,
  commands: {
    clipboardGetText: GUEST_CAPTURE_COMMAND,
    clipboardSetText: null,
    clipboardGetImage: null,
    clipboardSetImage: null,
    displays: null,
    setResolution: null,
    screenshot: null,
    poweroff: ["poweroff", "-f"],
    reboot: ["reboot", "-f"],
  },
};

export interface GuestEv {
  type: number;
  code: number;
  value: number;
  /** Guest clock (CLOCK_REALTIME), µs since the epoch. */
  at: number;
}

export interface Capture {
  ready: Set<string>;
  /** By node name (event3), SYN and MSC left out. */
  events: Map<string, GuestEv[]>;
  uhid: number;
  /** Every evdev node the guest has: node name → device name. */
  names: Map<string, string>;
}

export async function capture(client: AgentClient): Promise<Capture> {
  const text = (await client.request<{ text: string }>("clipboard_get")).text;
  const ready = new Set<string>();
  const bytes = new Map<string, number[]>();
  let cur: number[] | null = null;
  let uhid = -1;
  const names = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.startsWith("N ")) {
      const [node, ...name] = line.slice(2).trim().split(" ");
      names.set(node!, name.join(" "));
      cur = null;
    } else if (line.startsWith("R ")) ready.add(line.slice(2).trim());
    else if (line.startsWith("E ")) bytes.set(line.slice(2).trim(), (cur = []));
    else if (line.startsWith("U ")) {
      uhid = Number(line.slice(2));
      cur = null;
    }
    else if (cur) cur.push(...line.trim().split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));
  }
  const events = new Map<string, GuestEv[]>();
  for (const [node, b] of bytes) {
    const buf = Buffer.from(b);
    const out: GuestEv[] = [];
    for (let off = 0; off + 24 <= buf.length; off += 24) {
      const type = buf.readUInt16LE(off + 16);
      if (type === 0 || type === 4) continue; // SYN, MSC
      out.push({ type, code: buf.readUInt16LE(off + 18), value: buf.readInt32LE(off + 20), at: Number(buf.readBigInt64LE(off)) * 1e6 + Number(buf.readBigInt64LE(off + 8)) });
    }
    events.set(node, out);
  }
  return { ready, events, uhid, names };
}

/** Starts a reader on each node (/dev/input/eventN) and waits until every one holds its node open. */
export async function readNodes(client: AgentClient, nodes: readonly string[]): Promise<void> {
  for (const n of nodes) {
    const base = n.slice("/dev/input/".length);
    await client.request("launch_app", { path: "/bin/sh", args: ["-c", `exec 3<${n}; : > /tmp/ready_${base}; exec cat <&3 > /tmp/ev_${base}`] });
  }
  const want = nodes.map((n) => n.slice("/dev/input/".length));
  for (const until = Date.now() + 20_000; ; ) {
    const { ready } = await capture(client);
    if (want.every((w) => ready.has(w))) return;
    if (Date.now() > until) throw new Error(`readers not ready: ${want.filter((w) => !ready.has(w)).join(", ")}`);
    await Bun.sleep(100);
  }
}
