import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { auditRepo } from "../../src/db/repos/audit.ts";
import { unifiedDiff } from "../../src/vfio/diff.ts";
import * as edit from "../../src/vfio/edits.ts";
import { tmpdir } from "node:os";
import { writeMachine } from "../fixtures/sysfs/build.ts";
import { MACHINES } from "../fixtures/sysfs/machines.ts";
import { rig, snapshot, type Rig } from "./helpers.ts";

const rigs: Rig[] = [];
const make = (...a: Parameters<typeof rig>) => {
  const r = rig(...a);
  rigs.push(r);
  return r;
};
afterAll(() => {
  for (const r of rigs) {
    r.db.close();
    rmSync(dirname(r.target), { recursive: true, force: true });
  }
});
const GPU = "0000:01:00.0";

describe("bad input changes nothing", () => {
  test("bad addresses, hosts, non-GPUs, unknown devices, unknown fields", async () => {
    const r = make("desktop-intel-nvidia", "arch-grub-mkinitcpio");
    const before = snapshot(r.target);
    const cases: [unknown, RegExp][] = [
      [{ gpu: "zz:00.0" }, /PCI address/],
      [{ gpu: "0000:01:00.0; rm -rf /" }, /PCI address/],
      [{ gpu: "" }, /PCI address/],
      [{ gpu: GPU, extra: 1 }, /extra/],
      [{ gpu: "0000:00:02.0" }, /host GPU/],
      [{ gpu: "0000:02:00.0" }, /storage device.*not a GPU/],
      [{ gpu: "0000:09:00.0" }, /not found/],
    ];
    for (const [input, msg] of cases) {
      expect(() => r.vfio.plan(input as { gpu: string })).toThrow(msg);
      await expect(r.vfio.apply(input as { gpu: string }, "test")).rejects.toThrow(msg);
    }
    expect(snapshot(r.target)).toEqual(before);
    expect(auditRepo(r.db.db).list("vfio.apply")).toEqual([]);
    expect(() => r.vfio.rollback(undefined, "test")).toThrow(/nothing|no applied/);
    expect(() => r.vfio.rollback(42, "test")).toThrow(/not found/);
  });

  test("a symlinked or multi-line config is refused with a clear error", async () => {
    const r = make("desktop-intel-nvidia", "arch-grub-mkinitcpio");
    const grub = join(r.target, "etc/default/grub");
    copyFileSync(grub, join(r.target, "etc/default/grub.real"));
    unlinkSync(grub);
    symlinkSync("grub.real", grub);
    let before = snapshot(r.target);
    await expect(r.vfio.apply({ gpu: GPU }, "test")).rejects.toThrow(/\/etc\/default\/grub is a symlink/);
    expect(snapshot(r.target)).toEqual(before);

    const r2 = make("desktop-intel-nvidia", "arch-grub-mkinitcpio");
    const conf = join(r2.target, "etc/mkinitcpio.conf");
    writeFileSync(conf, readFileSync(conf, "utf8").replace("MODULES=(amdgpu)", "MODULES=(amdgpu\n  i915)"));
    before = snapshot(r2.target);
    expect(() => r2.vfio.plan({ gpu: GPU })).toThrow(/MODULES=\( spans several lines/);
    await expect(r2.vfio.apply({ gpu: GPU }, "test")).rejects.toThrow(/UNSUPPORTED|spans/);
    expect(snapshot(r2.target)).toEqual(before);
  });

  test("a mkinitcpio drop-in that sets MODULES is warned about", () => {
    const r = make("desktop-intel-nvidia", "arch-grub-mkinitcpio");
    mkdirSync(join(r.target, "etc/mkinitcpio.conf.d"), { recursive: true });
    writeFileSync(join(r.target, "etc/mkinitcpio.conf.d/nvidia.conf"), "MODULES=(nvidia nvidia_drm)\n");
    expect(r.vfio.plan({ gpu: GPU }).warnings.some((w) => w.includes("/etc/mkinitcpio.conf.d/nvidia.conf sets MODULES"))).toBe(true);
  });

  test("a config file that is not UTF-8 text is refused (its bytes could not be restored exactly)", async () => {
    const r = make("desktop-intel-nvidia", "arch-grub-mkinitcpio");
    writeFileSync(join(r.target, "etc/default/grub"), Buffer.from([0x23, 0x20, 0xe9, 0x0a])); // "# é" in Latin-1
    const before = snapshot(r.target);
    expect(() => r.vfio.plan({ gpu: GPU })).toThrow(/\/etc\/default\/grub is not a UTF-8 text file/);
    await expect(r.vfio.apply({ gpu: GPU }, "test")).rejects.toThrow(/UTF-8/);
    expect(snapshot(r.target)).toEqual(before);
  });

  test("a GPU sharing its ids with the host GPU is refused", async () => {
    // two RTX 3070s, the first one the boot GPU: vfio-pci.ids would take the host's card as well
    const m = MACHINES.find((x) => x.name === "desktop-intel-nvidia")!;
    const root = join(tmpdir(), `neuron-twin-${process.pid}`);
    writeMachine(root, {
      ...m,
      devices: [
        ...m.devices.filter((d) => d.address !== "0000:00:02.0"),
        ...m.devices
          .filter((d) => d.address.startsWith("0000:01:00."))
          .map((d) => ({ ...d, parents: ["0000:00:06.0"], address: d.address.replace("0000:01:", "0000:03:"), group: 7, bootVga: d.bootVga === undefined ? undefined : (1 as const) })),
      ],
    });
    const r = make(root, "arch-grub-mkinitcpio");
    const before = snapshot(r.target);
    expect(() => r.vfio.plan({ gpu: GPU })).toThrow(/host GPU uses the same ids \(10de:2484, 10de:228b\)/);
    await expect(r.vfio.apply({ gpu: GPU }, "test")).rejects.toThrow(/same ids/);
    expect(snapshot(r.target)).toEqual(before);
    rmSync(root, { recursive: true, force: true });
  });
});

describe("transactions", () => {
  test("a failure half-way undoes what was written and records the failure", async () => {
    const r = make("desktop-intel-nvidia", "fedora-dracut");
    // dracut.conf.d is a file: the second write cannot create its directory
    rmSync(join(r.target, "etc/dracut.conf.d"), { recursive: true });
    writeFileSync(join(r.target, "etc/dracut.conf.d"), "not a directory\n");
    writeFileSync(join(r.target, "etc/dracut.conf"), "# dracut\n");
    const before = snapshot(r.target);
    await expect(r.vfio.apply({ gpu: GPU }, "test")).rejects.toThrow(/undone/);
    expect(snapshot(r.target)).toEqual(before);
    const rows = auditRepo(r.db.db).list("vfio.apply");
    expect(rows.map((x) => x.status)).toEqual(["failed"]);
    expect(JSON.parse(rows[0]!.details).error).toMatch(/not a directory/);
  });

  test("rollback refuses when a file changed after the apply, and changes nothing", async () => {
    const r = make("desktop-intel-nvidia", "arch-grub-mkinitcpio");
    await r.vfio.apply({ gpu: GPU }, "test");
    const grub = join(r.target, "etc/default/grub");
    writeFileSync(grub, readFileSync(grub, "utf8") + "GRUB_TIMEOUT_STYLE=menu\n");
    const before = snapshot(r.target);
    expect(() => r.vfio.rollback(undefined, "test")).toThrow(/changed since the apply.*\/etc\/default\/grub/);
    expect(snapshot(r.target)).toEqual(before);
    expect(auditRepo(r.db.db).list("vfio.apply")[0]!.status).toBe("applied");
  });

  test("a second apply with other settings rolls back to the first, then to the original", async () => {
    const r = make("laptop-nvidia-3d-nvme", "arch-grub-mkinitcpio");
    const original = snapshot(r.target);
    const a = await r.vfio.apply({ gpu: GPU }, "test");
    const afterA = snapshot(r.target);
    const b = await r.vfio.apply({ gpu: GPU, acsOverride: true }, "test");
    expect(b.changed).toBe(true);
    expect(b.files.map((f) => f.path)).toEqual(["/etc/default/grub"]);
    expect(() => r.vfio.rollback(a.auditId, "test")).toThrow(/changed since the apply/);
    r.vfio.rollback(undefined, "test");
    expect(snapshot(r.target)).toEqual(afterA);
    r.vfio.rollback(undefined, "test");
    expect(snapshot(r.target)).toEqual(original);
  });

  test("a tampered backup manifest is refused", async () => {
    const r = make("desktop-intel-nvidia", "arch-grub-mkinitcpio");
    const a = await r.vfio.apply({ gpu: GPU }, "test");
    writeFileSync(join(a.backupDir!, "manifest.json"), '{"version":1,"files":"x"}');
    const before = snapshot(r.target);
    expect(() => r.vfio.rollback(undefined, "test")).toThrow(/malformed manifest/);
    expect(snapshot(r.target)).toEqual(before);
  });
});

describe("regeneration commands", () => {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  const root = process.getuid?.() === 0;
  const reason = !root ? "chroot needs root" : !busybox ? "no static busybox (package busybox-static)" : "";
  test.skipIf(reason !== "")(`apply --regenerate runs the listed commands inside the target root ${reason ? `(skipped: ${reason})` : ""}`, async () => {
    const r = make("desktop-intel-nvidia", "arch-grub-mkinitcpio", { mkinitcpio: "/usr/bin/mkinitcpio", grubMkconfig: "/usr/bin/grub-mkconfig" });
    mkdirSync(join(r.target, "bin"), { recursive: true });
    mkdirSync(join(r.target, "usr/bin"), { recursive: true });
    mkdirSync(join(r.target, "var/log"), { recursive: true });
    copyFileSync(busybox!, join(r.target, "bin/busybox"));
    chmodSync(join(r.target, "bin/busybox"), 0o755);
    // The generators inside the target: real programs that record what they were asked to do, and read the config
    writeFileSync(join(r.target, "usr/bin/mkinitcpio"), '#!/bin/busybox sh\n/bin/busybox grep -q "^MODULES=(vfio_pci" /etc/mkinitcpio.conf && echo "mkinitcpio $*" >> /var/log/regen\n', { mode: 0o755 });
    writeFileSync(join(r.target, "usr/bin/grub-mkconfig"), '#!/bin/busybox sh\necho "grub-mkconfig $*" >> /var/log/regen\necho "grub failed: no /boot" >&2\nexit 3\n', { mode: 0o755 });
    const res = await r.vfio.apply({ gpu: GPU, regenerate: true }, "test");
    expect(res.commands.map((c) => [c.argv.slice(2).join(" "), c.ok, c.exitCode])).toEqual([
      ["/usr/bin/mkinitcpio -P", true, 0],
      ["/usr/bin/grub-mkconfig -o /boot/grub/grub.cfg", false, 3],
    ]);
    expect(res.commands[1]!.output).toContain("grub failed");
    expect(readFileSync(join(r.target, "var/log/regen"), "utf8")).toBe("mkinitcpio -P\ngrub-mkconfig -o /boot/grub/grub.cfg\n");
    expect(res.warnings.some((w) => w.includes("grub-mkconfig") && w.includes("failed"))).toBe(true);
  });
});

describe("edits are idempotent and diffs exact", () => {
  test("each edit applied twice equals applied once", () => {
    const mods = edit.vfioModules(true);
    const params = ["intel_iommu=on", "iommu=pt", "vfio-pci.ids=10de:2484"];
    const once = (f: (t: string) => string, t: string) => expect(f(f(t))).toBe(f(t));
    once((t) => edit.mkinitcpioConf("x", t, mods).text, "MODULES=(i915 vfio)\nHOOKS=(base udev block)\n");
    once((t) => edit.mkinitcpioConf("x", t, mods).text, 'MODULES="i915"\n');
    once((t) => edit.initramfsToolsModules(t, mods), "# c\nvfio\nfoo\n");
    once((t) => edit.grubDefault("x", t, params), "GRUB_CMDLINE_LINUX_DEFAULT='quiet vfio-pci.ids=1:2' # c\n");
    once((t) => edit.bootEntry(t, params)!, "linux /v\noptions a iommu=pt\noptions b intel_iommu=off\n");
    once((t) => edit.kernelCmdline(t, params), "root=/dev/sda1 quiet\n");
    once((t) => edit.cmdlineDropKeys(t, params), "# c\nquiet iommu=soft\n");
    expect(edit.mkinitcpioConf("x", "MODULES=(i915 vfio)\nHOOKS=(base udev block)\n", mods).text).toBe(
      "MODULES=(vfio_pci vfio vfio_iommu_type1 vfio_virqfd i915)\nHOOKS=(base udev modconf block)\n",
    );
    expect(edit.bootEntry("linux /v\noptions a iommu=pt\noptions b intel_iommu=off\n", params)).toBe(
      "linux /v\noptions a\noptions b intel_iommu=on iommu=pt vfio-pci.ids=10de:2484\n",
    );
    expect(() => edit.grubDefault("/etc/default/grub", 'GRUB_CMDLINE_LINUX_DEFAULT="$X quiet"\n', params)).toThrow(/expansions/);
  });

  test("unified diff matches diff -u", async () => {
    const a = Array.from({ length: 40 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const b = a.replace("line 3\n", "line three\n").replace("line 30\n", "").concat("tail\n");
    const dir = dirname(rigs[0]?.target ?? "/tmp/x");
    const base = join(dir, "..", `diff-${process.pid}`);
    mkdirSync(base, { recursive: true });
    writeFileSync(join(base, "a"), a);
    writeFileSync(join(base, "b"), b);
    const proc = Bun.spawnSync(["diff", "-u", join(base, "a"), join(base, "b")]);
    rmSync(base, { recursive: true, force: true });
    const ref = proc.stdout.toString().split("\n").slice(2).join("\n");
    expect(unifiedDiff("/f", a, b).split("\n").slice(2).join("\n")).toBe(ref);
    expect(unifiedDiff("/f", a, a)).toBe("");
  });
});
