/**
 * A VM's input devices as its definition chooses them (inputDevices: ps2, usb, virtio), on a
 * real libvirtd under TCG: libvirt accepts each definition, QEMU has the devices, the input
 * hub reports and routes to them, and the events arrive from the right device in the guest
 * (the input test guest's evprint on the serial console). The three VMs boot at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import type { SinkName } from "../../src/input/sinks.ts";
import { VmInputService } from "../../src/input/vm-input.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { silentLogger } from "../../src/log.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { vmQmpSocket } from "../../src/vm/qmp-socket.ts";
import { parseSpec, VmService } from "../../src/vm/service.ts";
import type { Virsh } from "../../src/vm/virsh.ts";
import { domainTree, serializeXml } from "../../src/vm/xml.ts";
import { tempDir } from "../helpers/env.ts";
import { inputGuest, type InputGuest } from "../input/guest.ts";
import { waitFor } from "../input/qemu.ts";
import { libvirtdUnavailable, startLibvirtd, type PrivateLibvirtd } from "./libvirtd.ts";

const guest = libvirtdUnavailable() ?? inputGuest();
const SKIP = typeof guest === "string" ? guest : null;
if (SKIP) console.warn(`skipping the VM input devices test: ${SKIP}`);

const EV_KEY = 1, EV_REL = 2, EV_ABS = 3, KEY_A = 30, REL_X = 0, ABS_X = 0;
type Bus = "ps2" | "usb" | "virtio";
/** Per bus: the evdev devices the guest gets (beside the i8042 pair), and who takes keys, motion and absolute motion. */
const CASES: Record<Bus, { nevents: number; keyboard: string; pointer: string; absolute: string | null; sinks: Record<string, string | null> }> = {
  ps2: { nevents: 2, keyboard: "AT Translated Set 2 keyboard", pointer: "ImExPS/2 Generic Explorer Mouse", absolute: null, sinks: { keyboard: "ps2", pointer: "ps2", absolute: null } },
  usb: { nevents: 5, keyboard: "QEMU QEMU USB Keyboard", pointer: "QEMU QEMU USB Mouse", absolute: "QEMU QEMU USB Tablet", sinks: { keyboard: "usb", pointer: "usb", absolute: "usb" } },
  virtio: { nevents: 5, keyboard: "QEMU Virtio Keyboard", pointer: "QEMU Virtio Mouse", absolute: "QEMU Virtio Tablet", sinks: { keyboard: "virtio", pointer: "virtio", absolute: "virtio" } },
};

describe.skipIf(SKIP !== null)("VM input devices from the definition, on libvirt, into a real guest", () => {
  const dir = tempDir("neuron-vminput-");
  const qmpDir = join(dir.path, "qmp");
  let daemon: PrivateLibvirtd;
  let virsh: Virsh;
  let db: ReturnType<typeof openDatabase>;
  let input: VmInputService;
  const consoleOf = (bus: Bus) => join(dir.path, `${bus}.console`);
  const lines = (bus: Bus) => (existsSync(consoleOf(bus)) ? readFileSync(consoleOf(bus), "utf8").split(/\r?\n/) : []);

  beforeAll(async () => {
    const g = guest as InputGuest;
    daemon = await startLibvirtd();
    virsh = daemon.virsh();
    db = openDatabase(join(dir.path, "neuron.db"));
    const vms = new VmService({
      virsh,
      audit: vmAuditRepo(db.db),
      resolver: noPassthrough,
      settings: { stateDir: dir.path, shmDir: daemon.shmDir, qemuImg: "qemu-img", root: "/", targetRoot: join(dir.path, "target"), qmpDir, libvirtQemuDir: daemon.hostPath("/var/lib/libvirt/qemu") },
      shmOwner: () => null,
      cpuVendor: () => "other",
      domainType: "qemu",
    });
    await Promise.all(
      (Object.keys(CASES) as Bus[]).map(async (bus) => {
        const name = `in-${bus}`;
        const spec = parseSpec({ name, template: "linux", vcpus: 1, memoryMiB: 256, network: { kind: "none" }, graphics: "none", inputDevices: bus });
        // the appliance's definition, with the input test kernel booted directly instead of UEFI firmware
        const tree = domainTree(spec, { domainType: "qemu", qmpSocket: vmQmpSocket(qmpDir, name) }) as { domain: Record<string, unknown> & { devices: Record<string, unknown> } };
        tree.domain.os = { type: { "@_arch": "x86_64", "@_machine": "q35", "#text": "hvm" }, kernel: g.kernel, initrd: g.initrd, cmdline: `console=ttyS0 quiet panic=-1 nevents=${CASES[bus].nevents}` };
        tree.domain.devices.serial = { "@_type": "file", source: { "@_path": consoleOf(bus) }, target: { "@_port": "0" } };
        await virsh.define(serializeXml(tree));
        expect((await vms.start(name, "test")).state).toBe("running");
      }),
    );
    for (const bus of Object.keys(CASES) as Bus[]) await waitFor(() => lines(bus).some((l) => l.startsWith("READY")), 120_000, `the ${bus} guest`);
    input = new VmInputService({ qmpDir, settings: { keymapDir: "/usr/share/qemu/keymaps", layouts: {}, frameMs: 0, keyRepeat: "guest", pins: {} }, nativePath: () => resolveNativePath({}), log: silentLogger });
  }, 240_000);

  afterAll(async () => {
    await input?.close();
    if (daemon) {
      for (const bus of Object.keys(CASES)) await virsh.destroy(`in-${bus}`).catch(() => undefined);
      await daemon.stop();
    }
    db?.close();
    dir.cleanup();
  }, 60_000);

  for (const bus of Object.keys(CASES) as Bus[]) {
    test(`${bus}: the hub reports the definition's devices and its input arrives from them in the guest`, async () => {
      const c = CASES[bus];
      const name = `in-${bus}`;
      const devs = new Map<number, string>();
      for (const l of lines(bus)) {
        const m = /^DEV (\d+) (.*)$/.exec(l);
        if (m) devs.set(Number(m[1]), m[2]!.trim());
      }
      expect([...devs.values()]).toEqual(expect.arrayContaining([c.keyboard, c.pointer, ...(c.absolute ? [c.absolute] : [])]));
      const probe = await input.probe(name);
      expect(Object.fromEntries(probe.sinks.filter((s) => s.eventClass !== "gamepad").map((s) => [s.eventClass, s.sink]))).toEqual(c.sinks as Record<string, SinkName | null>);
      await input.inject(name, [
        { type: "key", usage: 0x04, down: true },
        { type: "key", usage: 0x04, down: false },
        { type: "move", dx: 4, dy: 0 },
        ...(c.absolute ? [{ type: "abs" as const, x: 16384, y: 16384 }] : []),
      ]);
      const events = () =>
        lines(bus).flatMap((l) => {
          const m = /^EV (\d+) (\d+) (\d+) (-?\d+)/.exec(l);
          return m ? [{ dev: devs.get(Number(m[1])), type: Number(m[2]), code: Number(m[3]), value: Number(m[4]) }] : [];
        });
      const want = (dev: string, type: number, code: number) => events().some((e) => e.dev === dev && e.type === type && e.code === code);
      await waitFor(() => want(c.keyboard, EV_KEY, KEY_A) && want(c.pointer, EV_REL, REL_X) && (!c.absolute || want(c.absolute, EV_ABS, ABS_X)), 20_000, `${bus} input in the guest`);
      expect(events().filter((e) => e.type === EV_KEY && e.code === KEY_A).map((e) => [e.dev, e.value])).toEqual([[c.keyboard, 1], [c.keyboard, 0]]);
      // motion arrives from the device the hub reported
      expect(events().filter((e) => e.type === EV_REL && e.code === REL_X).map((e) => e.dev)).toEqual([c.pointer]);
    }, 60_000);
  }
});
