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
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureAgentCertificates, type AgentCertificates } from "../../src/guest/certs.ts";
import { AgentClient } from "../../src/guest/client.ts";
import { QgaClient } from "../../src/guest/qga.ts";
import type { GuestInfo } from "../../src/guest/model.ts";
import { silentLogger } from "../../src/log.ts";
import { BUN, REPO_ROOT, tempDir } from "../helpers/env.ts";
import { tinyPng, waitFor } from "./agent-env.ts";
import { buildInitramfs, findKernel, qemuArgs, tinyGuestUnavailable, type Kernel } from "./tiny-guest.ts";

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
  const sock = join(work.path, "agent.sock");
  const consoleLog = join(work.path, "console.log");
  const qgaSock = join(work.path, "qga.sock");
  let certs: AgentCertificates;
  let vm: Bun.Subprocess | null = null;
  let client: AgentClient;

  beforeAll(async () => {
    certs = await ensureAgentCertificates({ stateDir: work.path, openssl: "openssl" }, "tiny");
    const agentBin = join(work.path, "neuron-agent");
    const build = Bun.spawnSync([BUN, "build", "--compile", join(REPO_ROOT, "src", "guest-agent", "main.ts"), "--outfile", agentBin], { stderr: "pipe", stdout: "pipe" });
    if (build.exitCode !== 0) throw new Error(`agent build failed: ${build.stderr.toString()}`);
    const initramfs = buildInitramfs(
      work.path,
      kernel as Kernel,
      {
        "agent/neuron-agent": { host: agentBin, libs: true },
        "agent/config.json": { text: JSON.stringify(GUEST_CONFIG) },
        "agent/certs/ca.crt": { text: certs.guest.ca },
        "agent/certs/guest.crt": { text: certs.guest.cert },
        "agent/certs/guest.key": { text: certs.guest.key, mode: 0o600 },
        "agent/shot.png": { text: tinyPng() },
        "etc/os-release": { text: 'NAME="NeuronOS test guest"\nID=neuronos-test\nVERSION_ID="1"\n' },
        ...(QGA ? { "bin/qemu-ga": { host: QGA, libs: true } } : {}),
      },
      [
        // The QEMU guest agent on its own port, found by name (no udev in this guest).
        // Ports appear asynchronously after virtio_console loads: wait for them.
        "for i in $(seq 100); do [ -e /sys/class/virtio-ports/vport0p2/name ] && break; sleep 0.1; done",
        "for p in /sys/class/virtio-ports/*; do if [ \"$(cat $p/name)\" = org.qemu.guest_agent.0 ]; then /bin/qemu-ga -m virtio-serial -p /dev/$(basename $p) -t /tmp -f /tmp/qga.pid & fi; done",
        "echo 'Virtual-1 1024x768 primary' > /tmp/displays",
        ": > /tmp/clip",
        "HOME=/root TMPDIR=/tmp /agent/neuron-agent --config /agent/config.json",
      ].join("\n"),
    );
    vm = Bun.spawn(
      qemuArgs(kernel as Kernel, initramfs, consoleLog, [
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", `socket,id=agent0,path=${sock},server=on,wait=off`,
        "-device", "virtserialport,bus=vser0.0,chardev=agent0,name=org.neuronos.agent.0",
        "-chardev", `socket,id=qga0,path=${qgaSock},server=on,wait=off`,
        "-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
      ]),
      { stdout: "ignore", stderr: "pipe" },
    );
    await waitFor(() => existsSync(sock), 10_000, "QEMU's chardev socket");
    client = new AgentClient({ socketPath: sock, tls: certs.host, log: silentLogger, requestTimeoutMs: 30_000, connectTimeoutMs: 4_000, backoff: { initialMs: 200, maxMs: 1000 } });
    client.start();
    const booted = Date.now();
    const qemuProc = vm;
    await waitFor(() => {
      if (qemuProc.exitCode !== null) throw new Error(`QEMU exited with ${qemuProc.exitCode}`);
      return client.state === "connected";
    }, 110_000, `the guest agent (console: ${consoleLog})`).catch((err) => {
      throw new Error(`${(err as Error).message}\n${existsSync(consoleLog) ? readFileSync(consoleLog, "utf8").slice(-3000) : ""}`);
    });
    console.log(`guest agent connected ${((Date.now() - booted) / 1000).toFixed(1)} s after QEMU started (TCG)`);
  }, 180_000);

  afterAll(async () => {
    client?.stop();
    if (vm) {
      vm.kill();
      await vm.exited;
    }
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
    client = new AgentClient({ socketPath: sock, tls: certs.host, log: silentLogger, requestTimeoutMs: 30_000, connectTimeoutMs: 20_000, backoff: { initialMs: 200, maxMs: 1000 } });
    client.start();
    await waitFor(() => client.state === "connected", 60_000, "reconnection");
    expect((await client.request<{ pong: boolean }>("ping")).pong).toBe(true);
  }, 90_000);
});
