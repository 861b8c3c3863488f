/** doctor: the database opened as serve opens it, IOMMU advice inside a VM, the win11 template's firmware and TPM emulator. */
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { checkDb, checkIommu, checkKvm, checkWin11Support } from "../../src/system/doctor.ts";
import { tempDir } from "../helpers/env.ts";

describe("doctor checks", () => {
  test("database: a real one is ok with its schema; a corrupt or foreign file fails; nothing is migrated", () => {
    const d = tempDir();
    try {
      const good = join(d.path, "neuron.db");
      openDatabase(good).close();
      expect(checkDb(good)).toMatchObject({ status: "ok", detail: expect.stringMatching(/schema \d+$/) });
      const corrupt = join(d.path, "corrupt.db");
      writeFileSync(corrupt, Buffer.alloc(8192, 0x5a));
      expect(checkDb(corrupt)).toMatchObject({ status: "fail", detail: expect.stringContaining("cannot be opened as the appliance database") });
      const torn = join(d.path, "torn.db");
      openDatabase(torn).close();
      expect(statSync(torn).size).toBeGreaterThan(4096);
      const buf = readFileSync(torn);
      buf.fill(0xff, 4096, Math.min(buf.length, 12288));
      writeFileSync(torn, buf);
      expect(checkDb(torn).status).toBe("fail");
      // an empty SQLite file (never migrated): ok, with the migrations serve will apply
      const empty = join(d.path, "empty.db");
      new Database(empty, { create: true }).close();
      expect(checkDb(empty)).toMatchObject({ status: "ok", detail: expect.stringContaining("applied at the next start") });
      expect(checkDb(empty).detail).toContain("schema 0");
    } finally {
      d.cleanup();
    }
  });

  test("IOMMU inside a VM: no 'enable VT-d in firmware' advice", () => {
    const d = tempDir();
    try {
      mkdirSync(join(d.path, "proc"), { recursive: true });
      writeFileSync(join(d.path, "proc", "cpuinfo"), "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme vmx hypervisor sse2\n");
      expect(checkKvm(join(d.path, "kvm"), d.path).detail).toContain("nested virtualisation");
      expect(checkKvm(join(d.path, "kvm"), d.path).detail).not.toContain("firmware");
      const c = checkIommu(d.path);
      expect(c.detail).toContain("virtual machine");
      expect(c.detail).not.toMatch(/firmware|VT-d/);
      writeFileSync(join(d.path, "proc", "cpuinfo"), "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme vmx sse2\n");
      expect(checkIommu(d.path).detail).toContain("enable VT-d/AMD-Vi in firmware");
    } finally {
      d.cleanup();
    }
  });

  test("win11: a Secure Boot OVMF with enrolled keys and swtpm", () => {
    const d = tempDir();
    try {
      const plain = { "interface-types": ["uefi"], targets: [{ architecture: "x86_64", machines: ["pc-q35-*"] }], features: ["acpi-s3"] };
      writeFileSync(join(d.path, "60-plain.json"), JSON.stringify(plain));
      writeFileSync(join(d.path, "bad.json"), "{");
      const without = checkWin11Support(d.path, "/bin/true");
      expect(without).toMatchObject({ status: "warn", detail: expect.stringContaining("no OVMF with Secure Boot and enrolled keys") });
      writeFileSync(join(d.path, "40-secure.json"), JSON.stringify({ ...plain, features: ["secure-boot", "enrolled-keys", "requires-smm"] }));
      expect(checkWin11Support(d.path, "/bin/true")).toMatchObject({ status: "ok", detail: "Secure Boot firmware 40-secure.json; TPM emulator /bin/true" });
      expect(checkWin11Support(d.path, "/nonexistent/swtpm")).toMatchObject({ status: "warn", detail: expect.stringContaining("install swtpm") });
      expect(checkWin11Support(join(d.path, "none"), "/bin/true").detail).toContain("install OVMF");
    } finally {
      d.cleanup();
    }
  });

  test.skipIf(!Bun.which("swtpm"))("win11 on this machine's firmware descriptors (skipped: swtpm not installed)", () => {
    expect(checkWin11Support("/usr/share/qemu/firmware", "swtpm").status).toBe("ok");
  });
});
