import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runCli, tempDir } from "../helpers/env.ts";
import { qemuAvailable, startQemu, type TestQemu } from "./qemu.ts";

describe("neuron-appliance input probe", () => {
  test("usage errors exit 2", () => {
    expect(runCli(["input", "probe"]).code).toBe(2);
    expect(runCli(["input", "frobnicate", "--qmp", "/nonexistent"]).code).toBe(2);
    expect(runCli(["input", "probe", "--qmp", "/x.qmp", "--vm", "win11"]).code).toBe(2);
  });

  test("an absent socket is a clear error, exit 1", () => {
    const r = runCli(["input", "probe", "--qmp", "/nonexistent/vm.qmp"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot use QMP socket /nonexistent/vm.qmp");
  });

  describe.skipIf(!qemuAvailable())("against a real QEMU", () => {
    const dir = tempDir("neuron-input-cli-");
    let vm: TestQemu;
    beforeAll(async () => {
      vm = await startQemu(dir.path);
    });
    afterAll(async () => {
      await vm?.stop();
      dir.cleanup();
    });

    test("--json reports the QEMU version and what its devices accept", () => {
      const r = runCli(["input", "probe", "--qmp", vm.socketPath, "--json"]);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.backend).toBe("qmp");
      expect(out.qemu).toMatch(/^\d+\.\d+\.\d+$/);
      expect(out.capabilities).toMatchObject({ keyboard: true, relativePointer: true, absolutePointer: true, gamepad: false });
      const text = runCli(["input", "probe", "--qmp", vm.socketPath]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain("absolutePointer  yes");
    });

    test("--vm NAME finds the VM's socket in qmpDir; a bad name changes nothing and says why", () => {
      const r = runCli(["input", "probe", "--vm", "vm", "--json"], { NEURON_QMP_DIR: dir.path });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ backend: "qmp", socket: vm.socketPath });
      const bad = runCli(["input", "probe", "--vm", "../etc/x"], { NEURON_QMP_DIR: dir.path });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("invalid VM name");
    });
  });
});
