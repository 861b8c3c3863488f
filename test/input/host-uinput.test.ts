/**
 * The host-uinput sink: a controller becomes a uinput pad on the host, passed into the VM
 * with QMP device_add virtio-input-host-pci, and its state reaches the guest's evdev.
 *
 * End to end it needs /dev/uinput on the host: skipped where the kernel has none. The
 * refusal path runs everywhere against a real QEMU: a pad QEMU cannot open is not plugged,
 * its input is dropped and counted, nothing is left behind.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { GamepadDriver, VirtualPad } from "../../src/guest-agent/gamepad.ts";
import { UinputDriver } from "../../src/guest-agent/gamepad-uinput.ts";
import { HostUinputPadBackend } from "../../src/input/host-uinput-backend.ts";
import { MoonlightButton } from "../../src/input/gamepad-map.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { pad } from "../gamepad/pad.ts";
import { bootAgentGuest, type AgentGuest } from "../guest/agent-guest.ts";
import { capture, CAPTURE_AGENT_CONFIG, readNodes } from "../guest/evdev-capture.ts";
import { findKernel, tinyGuestUnavailable, type Kernel } from "../guest/tiny-guest.ts";
import { qemuAvailable, startQemu } from "./qemu.ts";

function hostUinputMissing(): string | null {
  if (existsSync("/dev/uinput")) return null;
  let why = "the host has no /dev/uinput";
  try {
    const cfg = Bun.spawnSync(["sh", "-c", "zcat /proc/config.gz 2>/dev/null | grep -E '^(# )?CONFIG_INPUT_UINPUT[ =]'"]).stdout.toString().trim();
    if (cfg) why += ` (kernel: ${cfg}${existsSync("/lib/modules") ? "" : ", no modules to load"})`;
  } catch {
    // no kernel config to name
  }
  return why;
}

const kernel = findKernel();
const E2E_SKIP = hostUinputMissing() ?? tinyGuestUnavailable() ?? (typeof kernel === "string" ? kernel : !kernel.modules.virtio_input || !kernel.modules.evdev ? "the test kernel lacks virtio_input.ko or evdev.ko" : null);
if (E2E_SKIP) console.warn(`skipping the host-uinput end-to-end test: ${E2E_SKIP}`);
const BTN_SOUTH = 0x130, EV_KEY = 1;

describe.skipIf(!qemuAvailable())("host-uinput sink: refusals against a real QEMU", () => {
  const dir = tempDir("neuron-hostpad-");
  afterAll(() => dir.cleanup());

  test("a pad QEMU cannot open as evdev is not plugged: its input is dropped, the device destroyed", async () => {
    const qmpDir = join(dir.path, "qmp");
    mkdirSync(qmpDir);
    const vm = await startQemu(qmpDir, "vm1");
    const destroyed: number[] = [];
    // the host has no uinput: a stand-in pad whose node QEMU cannot open (a plain file)
    const fakeNode = join(dir.path, "not-an-evdev");
    await Bun.write(fakeNode, "");
    const driver: GamepadDriver = {
      name: "stand-in",
      unavailable: () => null,
      create: (index): VirtualPad => ({ device: fakeNode, emit() {}, destroy: () => void destroyed.push(index) }),
    };
    const qmp = new QmpInputBackend({ socketPath: join(qmpDir, "vm1.qmp"), reconnect: false });
    await qmp.open();
    try {
      const backend = new HostUinputPadBackend({ driver, qmp: (n, a) => qmp.command(n, a), log: silentLogger });
      await backend.open();
      backend.submit([pad({ buttonFlags: MoonlightButton.a })]);
      await backend.flush();
      expect(backend.pads().size).toBe(0);
      expect(destroyed).toEqual([0]);
      expect(backend.stats()).toMatchObject({ dropped: 1, delivered: 0, connects: 0 });
      // QEMU has no such device left
      const tree = (await qmp.command("qom-list", { path: "/machine/peripheral" })) as { name: string }[];
      expect(tree.some((p) => p.name.startsWith("neuron-hostpad"))).toBe(false);
      await backend.close();
    } finally {
      await qmp.close();
      await vm.stop();
    }
  }, 30_000);

  test("without /dev/uinput the backend does not open (the hub never picks the sink)", async () => {
    const backend = new HostUinputPadBackend({ driver: new UinputDriver(join(dir.path, "no-uinput")), qmp: async () => ({}), log: silentLogger });
    await expect(backend.open()).rejects.toThrow(/no-uinput is missing/);
  });
});

describe.skipIf(E2E_SKIP !== null)("host-uinput sink end to end: a host pad passed into a TCG guest as evdev", () => {
  const work = tempDir("neuron-hostpad-e2e-");
  let guest: AgentGuest | null = null;
  afterAll(async () => {
    await guest?.stop();
    work.cleanup();
  });

  test("the pad appears in the guest, its state arrives, and it is unplugged at close", async () => {
    const k = kernel as Kernel;
    mkdirSync(join(work.path, "qmp"));
    const qmpSock = join(work.path, "qmp", "vm1.qmp");
    guest = await bootAgentGuest({
      work: work.path,
      kernel: k,
      config: CAPTURE_AGENT_CONFIG,
      files: { "modules/evdev.ko": { host: k.modules.evdev! }, "modules/virtio_input.ko": { host: k.modules.virtio_input! } },
      init: ["insmod /modules/evdev.ko", "insmod /modules/virtio_input.ko"],
      qemu: ["-qmp", `unix:${qmpSock},server=on,wait=off`, "-device", "pcie-root-port,id=rp1,chassis=1,slot=1"],
    });
    const qmp = new QmpInputBackend({ socketPath: qmpSock, reconnect: false });
    await qmp.open();
    const backend = new HostUinputPadBackend({ driver: new UinputDriver(), qmp: (n, a) => qmp.command(n, n === "device_add" ? { ...a, bus: "rp1" } : a), log: silentLogger });
    await backend.open();
    backend.submit([{ kind: "controllerArrival", controllerNumber: 0, type: "xbox", capabilities: 0, supportedButtonFlags: 0xffff }]);
    await backend.flush();
    expect([...backend.pads().values()]).toEqual(["neuron-hostpad0"]);
    let node: string | undefined;
    for (const until = Date.now() + 20_000; !node && Date.now() < until; await Bun.sleep(200))
      node = [...(await capture(guest.client)).names].find(([, n]) => n === "NeuronOS Virtual Gamepad 0")?.[0];
    expect(node).toBeDefined();
    await readNodes(guest.client, [`/dev/input/${node}`]);
    backend.submit([pad({ buttonFlags: MoonlightButton.a })]);
    backend.submit([pad({})]);
    await backend.flush();
    let keys: number[] = [];
    for (const until = Date.now() + 10_000; keys.length < 2 && Date.now() < until; await Bun.sleep(200))
      keys = ((await capture(guest.client)).events.get(node!) ?? []).filter((e) => e.type === EV_KEY && e.code === BTN_SOUTH).map((e) => e.value);
    expect(keys).toEqual([1, 0]);
    await backend.close();
    expect(backend.pads().size).toBe(0);
    await qmp.close();
    expect(readFileSync(guest.consoleLog, "utf8")).not.toContain("Oops");
  }, 180_000);
});
