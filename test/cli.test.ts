import { describe, expect, test } from "bun:test";
import { COMMANDS } from "../src/cli/index.ts";
import { runCli, tempDir } from "./helpers/env.ts";

describe("CLI", () => {
  test("--help lists every command; no command → usage and exit 2", () => {
    const help = runCli(["--help"]);
    expect(help.code).toBe(0);
    for (const c of COMMANDS) expect(help.stdout).toContain(c.name);
    expect(runCli([]).code).toBe(2);
  });

  for (const name of COMMANDS.map((c) => c.name)) {
    test(`${name} --help prints its usage and exits 0`, () => {
      const r = runCli([name, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: neuron-appliance ${name}`);
    });

    test(`${name} with an unknown flag: one clear line, exit 2`, () => {
      const r = runCli([name, "--no-such-flag"]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("--no-such-flag");
    });
  }

  test("each lazily loaded command is the one its entry names, with the same summary", async () => {
    for (const entry of COMMANDS) {
      const cmd = await entry.load();
      expect([cmd.name, cmd.summary]).toEqual([entry.name, entry.summary]);
    }
  });

  test("an unknown command: one clear line, exit 2", () => {
    const r = runCli(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });

  test("version --json reports the appliance and native versions", () => {
    const r = runCli(["version", "--json"]);
    expect(r.code).toBe(0);
    const v = JSON.parse(r.stdout);
    expect(v.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(v.native.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(v.native.error).toBeNull();
  });

  test("doctor --json reports every capability with a status", () => {
    const d = tempDir();
    try {
      const r = runCli(["doctor", "--json", "--state-dir", d.path], { NEURON_LIBVIRT_URI: "test:///default" });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout);
      const byId = Object.fromEntries(report.checks.map((c: { id: string }) => [c.id, c]));
      expect(Object.keys(byId)).toEqual(["kvm", "iommu", "libvirt", "qemu", "uinput", "shm", "vm-shm", "vm-qmp", "native", "encoder", "codecs", "db"]);
      for (const c of report.checks) expect(["ok", "warn", "fail"]).toContain(c.status);
      expect(byId.libvirt.status).toBe("ok");
      expect(byId.native.status).toBe("ok");
      expect(byId.db.status).toBe("ok");
      expect(byId.shm.status).toBe("ok");
    } finally {
      d.cleanup();
    }
  });

  test("an invalid setting is refused at start with the field and the reason", () => {
    const r = runCli(["serve", "--port", "99999"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/port: .*65535/);
    const e = runCli(["doctor"], { NEURON_LOG_LEVEL: "loud" });
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/logLevel: .*NEURON_LOG_LEVEL/);
  });
});
