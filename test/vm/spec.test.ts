/** Spec validation, the IVSHMEM size rule and the shared-memory file: bad input is refused with a clear error. */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppError } from "../../src/errors.ts";
import { ResolutionText } from "../../src/vm/model.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { parseSpec, planVm, type PlanDeps } from "../../src/vm/service.ts";
import { ivshmemSizeMiB, lookingGlassClientIni, provisionShm, readShm, shmProblems, tmpfilesLine } from "../../src/vm/shm.ts";
import { tempDir } from "../helpers/env.ts";

const dir = tempDir("neuron-vmspec-");
afterAll(() => dir.cleanup());

const deps: PlanDeps = { resolver: noPassthrough, settings: { stateDir: "/var/lib/n", shmDir: "/dev/shm", root: "/" }, cpuVendor: () => "intel" };

function refused(input: unknown): AppError {
  try {
    parseSpec(input);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).errorCode).toBe("INVALID_INPUT");
    expect((err as AppError).status).toBe(422);
    return err as AppError;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe("IVSHMEM size rule (W×H×4×2, ×2 HDR, MiB + 10, next power of two)", () => {
  test.each([
    [1920, 1080, false, 32],
    [2560, 1440, false, 64],
    [3840, 2160, false, 128],
    [1920, 1080, true, 64],
    [3840, 2160, true, 256],
    [640, 480, false, 16],
    [7680, 4320, true, 1024],
  ])("%dx%d hdr=%p → %d MiB", (width, height, hdr, mib) => {
    expect(ivshmemSizeMiB({ width, height }, hdr)).toBe(mib);
  });

  test("resolution text", () => {
    expect(ResolutionText.parse("2560x1440")).toEqual({ width: 2560, height: 1440 });
    for (const bad of ["1920X1080", "1920x", "x1080", "-1920x1080", "99999x1080", "100x100", "1920x1080x2", "1920 x 1080"])
      expect(ResolutionText.safeParse(bad).success).toBe(false);
  });
});

describe("bad specs are refused, naming the field", () => {
  const base = { template: "win11" };
  test.each([
    ["a name with XML metacharacters", { name: "a<b>" }, "name"],
    ["a name with a quote", { name: "a'b" }, "name"],
    ["a name with a path separator", { name: "../etc" }, "name"],
    ["a name with a slash", { name: "a/b" }, "name"],
    ["an empty name", { name: "" }, "name"],
    ["a too long name", { name: "a".repeat(65) }, "name"],
    ["an unknown template", { name: "a", template: "win12" }, "template"],
    ["negative memory", { name: "a", memoryMiB: -1 }, "memoryMiB"],
    ["huge memory", { name: "a", memoryMiB: 2 ** 40 }, "memoryMiB"],
    ["zero vcpus", { name: "a", vcpus: 0 }, "vcpus"],
    ["fractional vcpus", { name: "a", vcpus: 1.5 }, "vcpus"],
    ["a negative disk", { name: "a", disk: { kind: "new", sizeGiB: -5 } }, "disk.sizeGiB"],
    ["a huge disk", { name: "a", disk: { kind: "new", sizeGiB: 1e9 } }, "disk.sizeGiB"],
    ["a relative disk path", { name: "a", disk: { kind: "existing", path: "disk.qcow2" } }, "disk.path"],
    ["a disk path with ..", { name: "a", disk: { kind: "existing", path: "/var/../etc/shadow" } }, "disk.path"],
    ["a bad GPU address", { name: "a", gpu: "01:00.0" }, "gpu"],
    ["a GPU address with a bad function", { name: "a", gpu: "0000:01:00.8" }, "gpu"],
    ["a GPU address with markup", { name: "a", gpu: "0000:01:00.0'/>" }, "gpu"],
    ["a too small resolution", { name: "a", resolution: { width: 100, height: 100 } }, "resolution.width"],
    ["a too large resolution", { name: "a", resolution: { width: 20000, height: 1080 } }, "resolution.width"],
    ["topology that does not multiply to vcpus", { name: "a", vcpus: 4, topology: { sockets: 1, cores: 3, threads: 1 } }, "topology"],
    ["pinning of the wrong length", { name: "a", vcpus: 2, pinning: [1] }, "pinning"],
    ["a device listed twice", { name: "a", gpu: "0000:01:00.0", passthrough: ["0000:01:00.0"] }, "passthrough"],
    ["an unknown field", { name: "a", extra: 1 }, "(spec)"],
    ["a bridge name with a space", { name: "a", network: { kind: "bridge", bridge: "br 0" } }, "network.bridge"],
  ])("%s", (_label, spec, field) => {
    const err = refused({ ...base, ...spec });
    expect(err.message).toContain(`${field}:`);
  });

  test("a GPU cannot be expanded without hardware detection: clear error", () => {
    try {
      planVm({ name: "a", template: "win11", gpu: "0000:01:00.0" }, deps);
      throw new Error("accepted");
    } catch (err) {
      expect((err as AppError).errorCode).toBe("GPU_EXPANSION_UNAVAILABLE");
    }
  });

  test("defaults per template", () => {
    const w11 = parseSpec({ name: "a", template: "win11" });
    expect([w11.secureBoot, w11.tpm, w11.hyperv]).toEqual([true, true, true]);
    const lin = parseSpec({ name: "a", template: "linux" });
    expect([lin.secureBoot, lin.tpm, lin.hyperv]).toEqual([false, false, false]);
    const plan = planVm({ name: "a", template: "win10", disk: { kind: "new", sizeGiB: 40 } }, deps);
    expect(plan.diskPath).toBe("/var/lib/n/vms/a.qcow2");
    expect(plan.shm).toEqual({ path: "/dev/shm/looking-glass-a", sizeMiB: 32 });
  });
});

describe("shared-memory file", () => {
  const owner = { uid: process.getuid!(), gid: process.getgid!() };

  test("provision creates user:group 0660 of the right size, grows but never shrinks", () => {
    const p = join(dir.path, "lg-a");
    expect(provisionShm(p, 32, owner)).toEqual({ path: p, sizeMiB: 32, mode: 0o660, uid: owner.uid, gid: owner.gid });
    expect(shmProblems(p, { width: 1920, height: 1080 }, false, owner)).toEqual([]);
    expect(provisionShm(p, 64, owner).sizeMiB).toBe(64);
    expect(provisionShm(p, 32, owner).sizeMiB).toBe(64);
  });

  test("doctor-style problems: too small, wrong mode, wrong owner, missing", () => {
    const p = join(dir.path, "lg-b");
    writeFileSync(p, Buffer.alloc(1024 * 1024));
    chmodSync(p, 0o644);
    const problems = shmProblems(p, { width: 3840, height: 2160 }, false, { uid: owner.uid + 1, gid: owner.gid });
    expect(problems.join("\n")).toContain("too small for 3840x2160 (needs 128 MiB)");
    expect(problems.join("\n")).toContain("mode 0644, expected 0660");
    expect(problems.join("\n")).toContain("owned by");
    expect(shmProblems(join(dir.path, "missing"), { width: 1920, height: 1080 }, false, owner)[0]).toContain("does not exist");
  });

  test("provision refuses bad sizes and non-files, changing nothing", () => {
    expect(() => provisionShm(join(dir.path, "x"), 0, owner)).toThrow(/out of range/);
    expect(() => provisionShm(join(dir.path, "x"), 1e6, owner)).toThrow(/out of range/);
    expect(readShm(join(dir.path, "x"))).toBeNull();
    expect(() => provisionShm(dir.path, 32, owner)).toThrow();
    expect(statSync(dir.path).isDirectory()).toBe(true);
  });

  test("tmpfiles rule and looking-glass-client config", () => {
    expect(tmpfilesLine("/dev/shm/looking-glass-a", "alice")).toBe("f /dev/shm/looking-glass-a 0660 alice kvm -\n");
    expect(() => tmpfilesLine("/dev/shm/x", "al ice\nf /etc/shadow")).toThrow(/bad user name/);
    expect(lookingGlassClientIni("a", "/dev/shm/looking-glass-a")).toContain("shmFile=/dev/shm/looking-glass-a");
    // SPICE input over the VM's unix socket: spice:host is the path when spice:port is 0
    const ini = lookingGlassClientIni("a", "/dev/shm/looking-glass-a", "/var/lib/neuron-appliance-spice/a.spice");
    expect(ini).toContain("\n[spice]\nhost=/var/lib/neuron-appliance-spice/a.spice\nport=0\n");
    // no SPICE socket: the client's SPICE is off, it never tries 127.0.0.1:5900
    expect(lookingGlassClientIni("a", "/dev/shm/looking-glass-a", null)).toContain("\n[spice]\nenable=no\n");
    expect(lookingGlassClientIni("a", "/dev/shm/looking-glass-a")).not.toContain("host=");
    expect(() => lookingGlassClientIni("a", "/dev/shm/x", "/s/a.spice\n[app]")).toThrow(/control character/);
  });
});
