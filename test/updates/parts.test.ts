/** The update's parts on their own: pacman progress, boot counting, /boot files, module checks, the words of a rollback, retention. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { snapshotsRepo } from "../../src/db/repos/updates.ts";
import { silentLogger } from "../../src/log.ts";
import { keepBootFiles, matchKernels, restoreBootFiles } from "../../src/snapshots/boot-files.ts";
import { SnapshotService } from "../../src/snapshots/service.ts";
import { armBootCounting, blessBoot, readBootCounter } from "../../src/updates/bootcount.ts";
import { checkModules, runChecks, type CheckContext } from "../../src/updates/checks.ts";
import { installedPackages, PacmanProgress, packageChanges, progressBar } from "../../src/updates/pacman.ts";
import { processAlive, processStart } from "../../src/updates/preflight.ts";
import { pruneSnapshots } from "../../src/updates/retention.ts";
import { rollbackReason } from "../../src/updates/rollback.ts";
import { tempDir } from "../helpers/env.ts";
import { btrfsMissing, makeRoot, type TestRoot } from "./fixture.ts";

describe("pacman progress", () => {
  test("counts from 'Packages (N)' and each step, with or without (i/n)", () => {
    const p = new PacmanProgress();
    const seen = ["resolving dependencies...", "Packages (3) a-2-1  b-2-1  c-1-1", ":: Processing package changes...", "upgrading a...", "upgrading b...", "(3/3) installing c                 [######] 100%"].map((l) => p.feed(l));
    expect(seen[0]).toBeNull();
    expect(seen[1]).toMatchObject({ total: 3, done: 0 });
    expect(seen[3]).toMatchObject({ done: 1, action: "upgrading", pkg: "a" });
    expect(seen[5]).toMatchObject({ total: 3, done: 3, action: "installing", pkg: "c" });
    expect(progressBar(p.state, 10)).toBe("[##########] 3/3 installing c");
    expect(progressBar({ total: 0, done: 0, action: null, pkg: null }, 4)).toBe("[....] 0/?");
  });

  test("installed versions from the local database, and what changed", () => {
    const d = tempDir();
    try {
      for (const [n, v] of [["a", "1-1"], ["b", "2-1"]]) {
        mkdirSync(join(d.path, "local", `${n}-${v}`), { recursive: true });
        writeFileSync(join(d.path, "local", `${n}-${v}`, "desc"), `%NAME%\n${n}\n\n%VERSION%\n${v}\n\n`);
      }
      const before = installedPackages(d.path);
      expect([...before]).toEqual([["a", "1-1"], ["b", "2-1"]]);
      const after = new Map([["a", "1-2"], ["c", "1-1"]]);
      expect(packageChanges(before, after)).toEqual([
        { name: "a", from: "1-1", to: "1-2" },
        { name: "b", from: "2-1", to: null },
        { name: "c", from: null, to: "1-1" },
      ]);
    } finally {
      d.cleanup();
    }
  });
});

describe("boot counting", () => {
  test("systemd-boot: +3 on the default entry, read back as systemd-boot renames it, blessed without the counter", () => {
    const d = tempDir();
    try {
      const e = join(d.path, "loader/entries");
      mkdirSync(e, { recursive: true });
      writeFileSync(join(d.path, "loader/loader.conf"), "timeout 3\ndefault arch\n");
      writeFileSync(join(e, "arch-fallback.conf"), "");
      writeFileSync(join(e, "arch.conf"), "title Arch\n");
      expect(armBootCounting(d.path, 3)).toMatchObject({ loader: "systemd-boot", left: 3 });
      expect(existsSync(join(e, "arch+3.conf"))).toBe(true);
      writeFileSync(join(e, "arch+2-1.conf"), readFileSync(join(e, "arch+3.conf")));
      Bun.spawnSync(["rm", join(e, "arch+3.conf")]);
      expect(readBootCounter(d.path)).toMatchObject({ left: 2, done: 1 });
      blessBoot(d.path);
      expect(existsSync(join(e, "arch.conf"))).toBe(true);
      expect(readBootCounter(d.path)).toBeNull();
    } finally {
      d.cleanup();
    }
  });

  test("GRUB: boot_counter and boot_success in a 1024-byte grubenv", () => {
    const d = tempDir();
    try {
      mkdirSync(join(d.path, "grub"));
      const env = join(d.path, "grub/grubenv");
      writeFileSync(env, "# GRUB Environment Block\nsaved_entry=Arch\n" + "#".repeat(1024 - 41));
      expect(armBootCounting(d.path, 3)).toMatchObject({ loader: "grub", left: 3 });
      expect(statSync(env).size).toBe(1024);
      expect(readFileSync(env, "utf8")).toContain("saved_entry=Arch\nboot_success=0\nboot_counter=3\n");
      expect(readBootCounter(d.path)).toMatchObject({ loader: "grub", left: 3 });
      blessBoot(d.path);
      expect(readFileSync(env, "utf8")).toContain("boot_success=1\n");
      expect(readBootCounter(d.path)).toBeNull();
    } finally {
      d.cleanup();
    }
  });

  test("no boot loader found: nothing armed", () => {
    const d = tempDir();
    try {
      expect(armBootCounting(d.path, 3)).toBeNull();
    } finally {
      d.cleanup();
    }
  });
});

describe("/boot files and kernels", () => {
  test("a damaged kept copy is refused and /boot stays as it is", () => {
    const d = tempDir();
    try {
      const boot = join(d.path, "boot");
      mkdirSync(join(boot, "EFI/Linux"), { recursive: true });
      writeFileSync(join(boot, "vmlinuz-linux"), "k1");
      writeFileSync(join(boot, "EFI/Linux/arch-linux.efi"), "uki1");
      writeFileSync(join(boot, "loader.txt"), "not a kernel file");
      const manifest = keepBootFiles(boot, join(d.path, "store"));
      expect(manifest.map((f) => f.path)).toEqual(["EFI/Linux/arch-linux.efi", "vmlinuz-linux"]);
      writeFileSync(join(boot, "vmlinuz-linux"), "k2");
      writeFileSync(join(boot, "initramfs-linux-new.img"), "new");
      writeFileSync(join(d.path, "store/EFI/Linux/arch-linux.efi"), "tampered");
      expect(() => restoreBootFiles(boot, join(d.path, "store"), manifest)).toThrow(/does not match its hash; \/boot was not changed/);
      expect(readFileSync(join(boot, "vmlinuz-linux"), "utf8")).toBe("k2");
      writeFileSync(join(d.path, "store/EFI/Linux/arch-linux.efi"), "uki1");
      expect(restoreBootFiles(boot, join(d.path, "store"), manifest)).toEqual({ restored: ["vmlinuz-linux"], removed: ["initramfs-linux-new.img"] });
      expect(readFileSync(join(boot, "vmlinuz-linux"), "utf8")).toBe("k1");
    } finally {
      d.cleanup();
    }
  });

  test("a kernel in /boot without its modules in the tree is found; out-of-tree modules are checked for the new kernel", () => {
    const d = tempDir();
    try {
      const before = join(d.path, "before");
      const after = join(d.path, "after");
      const boot = join(d.path, "boot");
      mkdirSync(join(before, "usr/lib/modules/6.1.0/updates"), { recursive: true });
      writeFileSync(join(before, "usr/lib/modules/6.1.0/updates/vendor-reset.ko.zst"), "");
      writeFileSync(join(before, "usr/lib/modules/6.1.0/vmlinuz"), "k61");
      mkdirSync(join(after, "usr/lib/modules/6.2.0/kernel"), { recursive: true });
      writeFileSync(join(after, "usr/lib/modules/6.2.0/vmlinuz"), "k62");
      mkdirSync(boot);
      writeFileSync(join(boot, "vmlinuz-linux"), "k62");
      const ctx = { root: after, bootDir: boot, before, outOfTreeModules: ["vendor-reset", "kvmfr"] } as CheckContext;
      expect(checkModules(ctx)).toMatchObject({ status: "failed", detail: "vendor-reset is not built for kernel 6.2.0" });
      mkdirSync(join(after, "usr/lib/modules/6.2.0/extramodules"));
      writeFileSync(join(after, "usr/lib/modules/6.2.0/extramodules/vendor_reset.ko.xz"), "");
      expect(checkModules(ctx)).toMatchObject({ status: "passed", detail: "present: vendor-reset@6.2.0" });
      expect(matchKernels(before, boot)).toEqual([{ kernel: "vmlinuz-linux", modules: null }]);
      expect(checkModules({ ...ctx, root: before })).toMatchObject({ status: "failed", detail: expect.stringContaining("/boot/vmlinuz-linux has no modules directory") });
    } finally {
      d.cleanup();
    }
  });
});

describe("built-in checks of a tree", () => {
  test("dangling config links are no error; vfio and kvmfr set up in the tree but the tree is not the running system: skipped, saying why", async () => {
    const d = tempDir();
    try {
      mkdirSync(join(d.path, "etc/modules-load.d"), { recursive: true });
      mkdirSync(join(d.path, "etc/modprobe.d"), { recursive: true });
      symlinkSync("../nowhere", join(d.path, "etc/modules-load.d/modules.conf"));
      symlinkSync("../nowhere", join(d.path, "etc/modprobe.d/broken.conf"));
      const base = { root: d.path, bootDir: join(d.path, "boot"), before: null, criticalBinaries: ["/usr/bin/missing"], requiredUnits: ["libvirtd.service"], outOfTreeModules: [], commands: [], bin: { systemctl: "systemctl", virsh: "virsh" }, libvirtUri: "qemu:///system", socketPath: "/nonexistent", sysRoot: "/" };
      const first = await runChecks({ ...base, builtins: ["vfio", "looking-glass", "binaries", "services", "libvirt", "api", "system-running"] });
      expect(first.map((c) => `${c.name}:${c.status}`)).toEqual(["critical binaries:failed", "system running:skipped", "libvirtd:skipped", "vfio-pci:skipped", "libvirt:skipped", "appliance API:skipped", "looking glass:skipped"]);
      expect(first.find((c) => c.name === "vfio-pci")!.detail).toBe("GPU passthrough is not set up");
      writeFileSync(join(d.path, "etc/modprobe.d/vfio.conf"), "options vfio-pci ids=10de:2684,10de:22ba\n");
      writeFileSync(join(d.path, "etc/modules-load.d/kvmfr.conf"), "kvmfr\n");
      const second = await runChecks({ ...base, builtins: ["vfio", "looking-glass"] });
      expect(second.map((c) => c.detail)).toEqual([`${d.path} is not the running system`, `${d.path} is not the running system`]);
    } finally {
      d.cleanup();
    }
  });
});

describe("rollback in words", () => {
  test("a person can read what happened", () => {
    const kept = [{ path: "/home", how: "carried over" as const }, { path: "/var/lib/libvirt", how: "separate subvolume" as const }, { path: "/var/lib/neuron-appliance", how: "absent" as const }];
    expect(
      rollbackReason({ packages: 143, startedAt: new Date("2026-12-03T10:00:00Z"), cause: { failed: [{ name: "libvirtd", required: true, status: "failed", detail: "libvirtd.service is failed" }], boots: 3 }, snapshotId: 41, kept, orphanKernels: [] }),
    ).toBe("The update of 143 packages on 3 Dec broke libvirtd (failed on 3 boots) — libvirtd: libvirtd.service is failed. Rolled back to snapshot 41; your VMs and files since then were kept.");
    expect(rollbackReason({ packages: 1, startedAt: new Date("2026-01-09T00:00:00Z"), cause: { interrupted: true }, snapshotId: 2, kept: [], orphanKernels: ["vmlinuz-lts"] })).toBe(
      "The update of 1 package on 9 Jan was interrupted before it finished (the appliance stopped during it). Rolled back to snapshot 2. Warning: /boot still has vmlinuz-lts without modules in the restored root.",
    );
  });

  test("a process is alive only while it is the same process (pid reuse)", () => {
    const start = processStart(process.pid);
    expect(start).toBeGreaterThan(0);
    expect(processAlive(process.pid, start)).toBe(true);
    expect(processAlive(process.pid, start! + 1)).toBe(false);
    expect(processAlive(null, null)).toBe(false);
    expect(processAlive(2 ** 22 + 7, null)).toBe(false);
  });
});

const missing = btrfsMissing();
describe.skipIf(missing !== null)("retention", () => {
  let t: TestRoot;
  beforeAll(() => {
    t = makeRoot({ sizeMb: 200, vfatBoot: false });
  });
  afterAll(() => t?.cleanup());

  test("keeps the last N pairs, then the free-space floor; manual snapshots stay", async () => {
    const db = openDatabase(join(t.dir, "neuron.db"));
    try {
      const svc = new SnapshotService(snapshotsRepo(db.db), { btrfs: "btrfs", snapper: "/nonexistent", snapperConfig: null, bootDir: "/boot" });
      const manual = await svc.create(t.root, { kind: "manual", description: "mine" });
      const pairs = [];
      for (let i = 0; i < 4; i++) {
        const pre = await svc.create(t.root, { kind: "pre", description: `pre ${i}` });
        pairs.push([pre.id, (await svc.create(t.root, { kind: "post", description: `post ${i}`, pre })).id]);
      }
      const deleted = await pruneSnapshots({ snapshots: svc, root: t.root, keepPairs: 2, minFreeMb: 0, protect: [], log: silentLogger });
      expect(deleted.sort((a, b) => a - b)).toEqual([...pairs[0]!, ...pairs[1]!].sort((a, b) => a - b));
      expect(svc.list(t.root).map((s) => s.id)).toEqual([manual.id, ...pairs[2]!, ...pairs[3]!]);
      for (const id of deleted) expect(existsSync(svc.get(id).path!)).toBe(false);
      // the free-space floor deletes further pairs, oldest first, but never the newest
      const more = await pruneSnapshots({ snapshots: svc, root: t.root, keepPairs: 2, minFreeMb: 10_000_000, protect: [], log: silentLogger });
      expect(more.sort((a, b) => a - b)).toEqual(pairs[2]!);
    } finally {
      db.close();
    }
  });
});
