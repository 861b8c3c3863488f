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
      expect(Object.keys(byId)).toEqual(["kvm", "iommu", "libvirt", "qemu", "win11", "uinput", "shm", "vm-shm", "vm-qmp", "vm-graphics", "native", "encoder", "codecs", "db"]);
      for (const c of report.checks) expect(["ok", "warn", "fail"]).toContain(c.status);
      expect(byId.libvirt.status).toBe("ok");
      expect(byId.native.status).toBe("ok");
      expect(byId.db.status).toBe("ok");
      expect(byId.shm.status).toBe("ok");
    } finally {
      d.cleanup();
    }
  });

  test("serve --gamestream-port: in --help; a bad value is one line on stderr and exit 2, before anything starts", () => {
    const help = runCli(["serve", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--gamestream-port BASE");
    expect(help.stdout).toContain("NEURON_GAMESTREAM_PORT");
    expect(help.stdout).toContain("gamestreamPort");
    for (const [bad, why] of [["abc", /not a port number/], ["47989x", /not a port number/], ["-5", /not a port number/], ["3", /room for HTTPS/], ["65530", /room for RTSP/], ["", /not a port number/]] as const) {
      const r = runCli(["serve", `--gamestream-port=${bad}`, "--state-dir", "/nonexistent/never-created"]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`--gamestream-port ${JSON.stringify(bad)}`);
      expect(r.stderr).toMatch(why);
    }
    // a value parseArgs cannot take at all is a usage error too
    for (const argv of [["serve", "--gamestream-port"], ["serve", "--gamestream-port", "-5"]]) {
      const r = runCli(argv);
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
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
