import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkDb, checkIommu, checkKvm, checkLibvirt, checkQemu, checkShm, checkUinput } from "../../src/system/doctor.ts";
import { tempDir, testConfig } from "../helpers/env.ts";

describe("doctor probes", () => {
  test("IOMMU: groups under <root>/sys/kernel/iommu_groups → on; none → off with the fix", () => {
    const d = tempDir();
    try {
      for (const g of ["0", "1", "2"]) mkdirSync(join(d.path, "sys", "kernel", "iommu_groups", g, "devices"), { recursive: true });
      expect(checkIommu(d.path)).toMatchObject({ status: "ok", detail: "on: 3 IOMMU group(s)" });
      expect(checkIommu(join(d.path, "empty"))).toMatchObject({ status: "warn" });
      expect(checkIommu(join(d.path, "empty")).detail).toMatch(/intel_iommu=on/);
    } finally {
      d.cleanup();
    }
  });

  test("KVM: a missing or non-device node is a failure that says why", () => {
    const d = tempDir();
    try {
      expect(checkKvm(join(d.path, "kvm"))).toMatchObject({ status: "fail" });
      writeFileSync(join(d.path, "kvm"), "");
      expect(checkKvm(join(d.path, "kvm")).detail).toMatch(/not a character device/);
    } finally {
      d.cleanup();
    }
  });

  test("KVM on this machine: reported with its group and mode", () => {
    const r = checkKvm("/dev/kvm");
    if (r.status === "fail") expect(r.detail).toMatch(/missing|not a character/);
    else expect(r.detail).toMatch(/group \S+, mode 0\d{3}/);
  });

  test("libvirt: the real test driver answers; a dead URI and a missing virsh fail with the reason", async () => {
    expect(await checkLibvirt(testConfig({ libvirtUri: "test:///default" }))).toMatchObject({ status: "ok" });
    const dead = await checkLibvirt(testConfig({ libvirtUri: "qemu+unix:///system?socket=/nonexistent/libvirt-sock" }));
    expect(dead.status).toBe("fail");
    expect(dead.detail).toMatch(/nonexistent|connect/);
    const missing = await checkLibvirt(testConfig({ bin: { virsh: "/nonexistent/virsh" } }));
    expect(missing).toMatchObject({ status: "fail" });
  });

  test("QEMU: the real binary reports its version; a missing one fails", async () => {
    const q = await checkQemu(testConfig());
    expect(q.status).toBe("ok");
    expect(q.detail).toMatch(/QEMU emulator version/);
    expect((await checkQemu(testConfig({ bin: { qemuSystem: "/nonexistent/qemu" } }))).status).toBe("fail");
  });

  test("uinput, shm and db paths", () => {
    const d = tempDir();
    try {
      expect(checkUinput(join(d.path, "uinput")).status).toBe("warn");
      expect(checkShm(d.path).status).toBe("ok");
      expect(checkShm(join(d.path, "missing")).status).toBe("fail");
      expect(checkDb(join(d.path, "a", "b", "neuron.db"))).toMatchObject({ status: "ok", detail: expect.stringMatching(/can be created/) });
    } finally {
      d.cleanup();
    }
  });
});
