import { describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { REPO_ROOT, tempDir } from "./helpers/env.ts";

const BUILD = join(REPO_ROOT, "build");
const systemdAnalyze = Bun.which("systemd-analyze");
const systemdTmpfiles = Bun.which("systemd-tmpfiles");

describe("packaging", () => {
  test.skipIf(!systemdAnalyze)("the systemd unit passes systemd-analyze verify (skipped: systemd-analyze not installed)", () => {
    const d = tempDir();
    try {
      const unit = readFileSync(join(BUILD, "neuron-appliance.service"), "utf8");
      expect(unit).toMatch(/^ExecStart=\/usr\/bin\/neuron-appliance serve /m);
      expect(unit).toMatch(/^Restart=on-failure$/m);
      expect(unit).toMatch(/^StateDirectory=neuron-appliance$/m);
      // verify checks that ExecStart exists: point it at a binary this machine has
      writeFileSync(join(d.path, "neuron-appliance.service"), unit.replace("/usr/bin/neuron-appliance", "/bin/true"));
      const r = Bun.spawnSync([systemdAnalyze!, "verify", join(d.path, "neuron-appliance.service")], { stderr: "pipe" });
      expect(r.stderr.toString()).toBe("");
      expect(r.exitCode).toBe(0);
    } finally {
      d.cleanup();
    }
  });

  test.skipIf(!systemdAnalyze)("the boot-time oneshot units pass systemd-analyze verify and run the commands that record their verdicts (skipped: systemd-analyze not installed)", () => {
    const d = tempDir();
    try {
      for (const [file, exec] of [
        ["neuron-appliance-update-verify.service", /^ExecStart=\/usr\/bin\/neuron-appliance update check --boot /m],
        ["neuron-appliance-setup-verify.service", /^ExecStart=\/usr\/bin\/neuron-appliance setup verify --boot --state-dir \/var\/lib\/neuron-appliance$/m],
      ] as const) {
        const unit = readFileSync(join(BUILD, file), "utf8");
        expect(unit).toMatch(exec);
        expect(unit).toMatch(/^Type=oneshot$/m);
        expect(unit).toMatch(/^WantedBy=multi-user.target$/m);
        writeFileSync(join(d.path, file), unit.replace("/usr/bin/neuron-appliance", "/bin/true"));
        // no man page is installed here: the Documentation= line is not what is checked
        const r = Bun.spawnSync([systemdAnalyze!, "verify", "--man=no", join(d.path, file)], { stderr: "pipe" });
        expect(r.stderr.toString()).toBe("");
        expect(r.exitCode).toBe(0);
      }
    } finally {
      d.cleanup();
    }
  });

  test.skipIf(!systemdTmpfiles)("tmpfiles.d creates the state dir (0700) and the shared memory file (0660, group kvm) (skipped: systemd-tmpfiles not installed)", () => {
    const d = tempDir();
    try {
      mkdirSync(join(d.path, "etc"));
      mkdirSync(join(d.path, "dev", "shm"), { recursive: true });
      cpSync("/etc/passwd", join(d.path, "etc", "passwd"));
      writeFileSync(join(d.path, "etc", "group"), readFileSync("/etc/group", "utf8").includes("\nkvm:") ? readFileSync("/etc/group", "utf8") : readFileSync("/etc/group", "utf8") + "kvm:x:994:\n");
      const r = Bun.spawnSync([systemdTmpfiles!, "--create", `--root=${d.path}`, join(BUILD, "neuron-appliance.tmpfiles")], { stderr: "pipe" });
      expect(r.stderr.toString()).toBe("");
      expect(r.exitCode).toBe(0);
      expect(statSync(join(d.path, "var", "lib", "neuron-appliance")).mode & 0o777).toBe(0o700);
      const shm = statSync(join(d.path, "dev", "shm", "looking-glass"));
      expect(shm.mode & 0o777).toBe(0o660);
      const kvmGid = readFileSync(join(d.path, "etc", "group"), "utf8").match(/^kvm:[^:]*:(\d+):/m)![1];
      expect(shm.gid).toBe(Number(kvmGid));
    } finally {
      d.cleanup();
    }
  });

  test("PKGBUILD is valid bash, keeps the executable unstripped and installs binary, library, unit and tmpfiles", () => {
    const pkgbuild = join(BUILD, "PKGBUILD");
    expect(Bun.spawnSync(["bash", "-n", pkgbuild]).exitCode).toBe(0);
    const r = Bun.spawnSync(["bash", "-c", `source "${pkgbuild}"; echo "$pkgname|$pkgver|\${options[*]}|$(declare -F | wc -l)"`]);
    const [name, ver, options, fns] = r.stdout.toString().trim().split("|");
    expect(name).toBe("neuron-appliance");
    expect(ver).toBe(JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).version);
    expect(options).toContain("!strip");
    expect(Number(fns)).toBeGreaterThanOrEqual(3);
    const text = readFileSync(pkgbuild, "utf8");
    for (const dest of ["/usr/bin/neuron-appliance", "/usr/lib/neuron-appliance/libneuron.so", "/usr/lib/systemd/system/neuron-appliance.service", "/usr/lib/systemd/system/neuron-appliance-update-verify.service", "/usr/lib/systemd/system/neuron-appliance-setup-verify.service", "/usr/lib/tmpfiles.d/neuron-appliance.conf", "/usr/lib/sysusers.d/neuron-appliance.conf"])
      expect(text).toContain(dest);
  });

  test("the packaged default config is valid", () => {
    const c = loadConfig({ configPath: join(BUILD, "config.default.json"), env: {} });
    expect(c.stateDir).toBe("/var/lib/neuron-appliance");
    expect(c.host).toBe("127.0.0.1");
    // the local API socket outside the 0700 state dir, 0660 to the admin group the sysusers file makes
    expect(c.socketPath).toBe("/run/neuron-appliance/api.sock");
    expect(readFileSync(join(BUILD, "neuron-appliance.sysusers"), "utf8")).toMatch(new RegExp(`^g ${c.adminGroup} -$`, "m"));
  });

  test.skipIf(!Bun.which("systemd-sysusers"))("sysusers.d creates the admin group (skipped: systemd-sysusers not installed)", () => {
    const d = tempDir();
    try {
      mkdirSync(join(d.path, "etc"), { recursive: true });
      writeFileSync(join(d.path, "etc", "group"), "root:x:0:\n");
      writeFileSync(join(d.path, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n");
      const r = Bun.spawnSync([Bun.which("systemd-sysusers")!, `--root=${d.path}`, join(BUILD, "neuron-appliance.sysusers")], { stderr: "pipe" });
      expect(r.stderr.toString()).not.toContain("Failed");
      expect(readFileSync(join(d.path, "etc", "group"), "utf8")).toMatch(/^neuron:x:\d+:/m);
    } finally {
      d.cleanup();
    }
  });
});
