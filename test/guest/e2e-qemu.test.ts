/**
 * End to end: the compiled guest agent runs inside a real QEMU guest (TCG,
 * Debian kernel, busybox initramfs) on the virtio-serial port
 * org.neuronos.agent.0; the host client talks to it over the chardev's unix
 * socket with mutual TLS: ping, info, resize, launch (+ exit event),
 * clipboard both ways, reconnect after the host side drops. The guest also
 * runs the real qemu-ga on org.qemu.guest_agent.0, which the host's QEMU guest
 * agent client talks to over the second port.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { AgentClient } from "../../src/guest/client.ts";
import { QgaClient } from "../../src/guest/qga.ts";
import type { GuestInfo } from "../../src/guest/model.ts";
import { tempDir } from "../helpers/env.ts";
import { tinyPng, waitFor } from "./agent-env.ts";
import { findKernel, tinyGuestUnavailable, type Kernel } from "./tiny-guest.ts";
import { bootAgentGuest, guestAgentClient, type AgentGuest } from "./agent-guest.ts";

const kernel = findKernel();
const QGA = Bun.which("qemu-ga", { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" });
const skipReason = tinyGuestUnavailable();
if (skipReason) console.warn(`skipping the QEMU end-to-end agent test: ${skipReason}`);

const GUEST_CONFIG = {
  certDir: "/agent/certs",
  pollMs: 200,
  commandTimeoutMs: 20_000,
  commands: {
    clipboardGetText: ["cat", "/tmp/clip"],
    clipboardSetText: ["sh", "-c", "cat > /tmp/clip"],
    clipboardGetImage: null,
    clipboardSetImage: null,
    displays: ["cat", "/tmp/displays"],
    setResolution: ["sh", "-c", 'printf "%s %sx%s primary\\n" "$0" "$1" "$2" > /tmp/displays', "{display}", "{width}", "{height}"],
    screenshot: ["cat", "/agent/shot.png"],
    poweroff: ["poweroff", "-f"],
    reboot: ["reboot", "-f"],
  },
};

describe.skipIf(skipReason !== null)("guest agent in a real QEMU guest over virtio-serial", () => {
  const work = tempDir("neuron-e2e-agent-");
  const qgaSock = join(work.path, "qga.sock");
  let guest: AgentGuest | null = null;
  let client: AgentClient;

  beforeAll(async () => {
    guest = await bootAgentGuest({
      work: work.path,
      kernel: kernel as Kernel,
      config: GUEST_CONFIG,
      files: {
        "agent/shot.png": { text: tinyPng() },
        "etc/os-release": { text: 'NAME="NeuronOS test guest"\nID=neuronos-test\nVERSION_ID="1"\n' },
        ...(QGA ? { "bin/qemu-ga": { host: QGA, libs: true } } : {}),
      },
      init: [
        // The QEMU guest agent on its own port, found by name (no udev in this guest).
        // Ports appear asynchronously after virtio_console loads: wait for them.
        "for i in $(seq 100); do [ -e /sys/class/virtio-ports/vport0p2/name ] && break; sleep 0.1; done",
        "for p in /sys/class/virtio-ports/*; do if [ \"$(cat $p/name)\" = org.qemu.guest_agent.0 ]; then /bin/qemu-ga -m virtio-serial -p /dev/$(basename $p) -t /tmp -f /tmp/qga.pid & fi; done",
        "echo 'Virtual-1 1024x768 primary' > /tmp/displays",
        ": > /tmp/clip",
      ],
      qemu: [
        "-chardev", `socket,id=qga0,path=${qgaSock},server=on,wait=off`,
        "-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
      ],
    });
    client = guest.client;
  }, 180_000);

  afterAll(async () => {
    client?.stop();
    await guest?.stop();
    work.cleanup();
  });

  test("ping and get_info from inside the guest", async () => {
    const pong = await client.request<{ pong: boolean }>("ping");
    expect(pong.pong).toBe(true);
    const info = await client.request<GuestInfo>("get_info");
    expect(info.os).toMatchObject({ family: "linux", name: "NeuronOS test guest", kernel: expect.stringMatching(/^6\./) });
    expect(info.displays).toEqual([{ name: "Virtual-1", width: 1024, height: 768, primary: true }]);
  }, 60_000);

  test("resize, launch with exit event, screenshot, clipboard both ways", async () => {
    expect(await client.request("set_resolution", { width: 1920, height: 1080 })).toEqual({ display: "Virtual-1", width: 1920, height: 1080 });
    const changed = new Promise((r) => client.once("resolution_changed", r));
    // The guest itself changes resolution: the poll reports it.
    await client.request("launch_app", { path: "/bin/sh", args: ["-c", "echo 'Virtual-1 1280x720 primary' > /tmp/displays"] });
    expect(await changed).toEqual({ name: "Virtual-1", width: 1280, height: 720, primary: true });
    const exited = new Promise<{ code: number | null }>((r) => client.once("app_exited", r));
    const { pid } = await client.request<{ pid: number }>("launch_app", { path: "/bin/sh", args: ["-c", "exit 5"] });
    expect(await exited).toMatchObject({ pid, code: 5 });
    const shot = await client.request<{ data: string }>("screenshot");
    expect(Buffer.from(shot.data, "base64").equals(tinyPng())).toBe(true);
    await client.request("clipboard_set", { mime: "text/plain", text: "host → guest ✓" });
    expect(await client.request("clipboard_get")).toEqual({ mime: "text/plain", text: "host → guest ✓" });
    const fromGuest = new Promise((r) => client.once("clipboard_changed", r));
    await client.request("launch_app", { path: "/bin/sh", args: ["-c", "printf 'guest → host' > /tmp/clip"] });
    expect(await fromGuest).toEqual({ mime: "text/plain", text: "guest → host" });
  }, 90_000);

  test.skipIf(!QGA)("the same host speaks to the real qemu-ga in the guest (org.qemu.guest_agent.0)", async () => {
    const q = new QgaClient({ socketPath: qgaSock, timeoutMs: 20_000 });
    await q.connect();
    try {
      await q.ping();
      expect(await q.osInfo()).toMatchObject({ id: "neuronos-test", name: "NeuronOS test guest", "kernel-release": expect.stringMatching(/^6\./) });
      const r = await q.exec("/bin/sh", ["-c", "cat /tmp/displays; exit 4"]);
      expect(r).toMatchObject({ exitCode: 4, stdout: expect.stringContaining("Virtual-1") });
    } finally {
      await q.close();
    }
  }, 90_000);

  test("the host drops the connection; a new client gets a fresh TLS session", async () => {
    client.stop();
    client = guestAgentClient(guest!.socketPath, guest!.certs, 20_000);
    client.start();
    await waitFor(() => client.state === "connected", 60_000, "reconnection");
    expect((await client.request<{ pong: boolean }>("ping")).pong).toBe(true);
  }, 90_000);
});
