/** `vm xml` end to end (real argv, real exit codes), GPU functions expanded from a fixture sysfs tree. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { domainXmlParser } from "../../src/vm/virsh.ts";
import { fixtureRoot } from "../fixtures/sysfs/build.ts";
import { runCli, tempDir } from "../helpers/env.ts";

const FIXTURE = fixtureRoot("desktop-intel-nvidia");

describe("vm xml", () => {
  test("prints a win11 definition with both GPU functions, 1440p HDR shared memory, memory and vcpus", () => {
    const r = runCli(["vm", "xml", "--template", "win11", "--name", "gaming", "--gpu", "0000:01:00.0", "--resolution", "2560x1440", "--hdr", "--memory", "16", "--vcpus", "8", "--root", FIXTURE]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const d = domainXmlParser.parse(r.stdout).domain;
    expect(d.name).toBe("gaming");
    expect(d.memory["#text"]).toBe("16384");
    expect(d.vcpu["#text"]).toBe("8");
    expect(d.devices.hostdev.map((h: { source: { address: Record<string, string> } }) => h.source.address["@_function"])).toEqual(["0x0", "0x1"]);
    expect(d.devices.shmem[0].size["#text"]).toBe("128");
  });

  test("--json gives the XML, the expanded functions and the shared memory", () => {
    const r = runCli(["vm", "xml", "--template", "linux", "--name", "l", "--json", "--root", FIXTURE]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.hostdevs).toEqual([]);
    expect(j.shm.sizeMiB).toBe(32);
    expect(j.xml).toContain("<domain");
  });

  test("--graphics vnc|spice: the display on a unix socket in spiceDir; --headless: none; a long spiceDir is refused", () => {
    const vnc = domainXmlParser.parse(runCli(["vm", "xml", "--template", "linux", "--name", "v", "--graphics", "vnc", "--root", FIXTURE], { NEURON_SPICE_DIR: "/run/nd" }).stdout).domain;
    expect(vnc.devices.graphics).toEqual({ "@_type": "vnc", listen: { "@_type": "socket", "@_socket": "/run/nd/v.vnc" } });
    const spice = domainXmlParser.parse(runCli(["vm", "xml", "--template", "linux", "--name", "s", "--root", FIXTURE], { NEURON_SPICE_DIR: "/run/nd" }).stdout).domain;
    expect(spice.devices.graphics.listen).toEqual({ "@_type": "socket", "@_socket": "/run/nd/s.spice" });
    expect(domainXmlParser.parse(runCli(["vm", "xml", "--template", "linux", "--name", "h", "--headless", "--root", FIXTURE]).stdout).domain.devices.graphics).toBeUndefined();
    const long = runCli(["vm", "xml", "--template", "linux", "--name", "s", "--root", FIXTURE], { NEURON_SPICE_DIR: "/" + "d".repeat(110) });
    expect(long.code).toBe(1);
    expect(long.stdout).toBe("");
    expect(long.stderr).toContain("is longer than 107 bytes (unix socket limit): use a shorter spiceDir or VM name");
  });

  test.each([
    [["--name", "a", "--graphics", "rdp"], "graphics:"],
    [["--name", "a<b"], "name:"],
    [["--name", "../x"], "name:"],
    [["--name", "a", "--resolution", "1920x"], "--resolution"],
    [["--name", "a", "--memory=-4"], "memoryMiB:"],
    [["--name", "a", "--vcpus", "lots"], "vcpus:"],
    [["--name", "a", "--gpu", "0000:00:02.0"], "cannot be passed through: boot_vga=1"],
    [["--name", "a", "--gpu", "0000:09:00.0"], "no PCI device 0000:09:00.0"],
    [["--name", "a", "--gpu", "bogus"], "gpu:"],
  ])("refuses %j with a one-line error", (args, message) => {
    const r = runCli(["vm", "xml", "--template", "win11", "--root", FIXTURE, ...args]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("usage errors exit 2", () => {
    expect(runCli(["vm"]).code).toBe(2);
    expect(runCli(["vm", "explode"]).code).toBe(2);
    expect(runCli(["vm", "show"]).code).toBe(2);
    expect(runCli(["vm", "xml", "--bogus"]).code).toBe(2);
  });

  test("vm view: clear errors for an unknown VM and a missing viewer, nothing started", () => {
    const dir = tempDir("neuron-vmview-");
    try {
      const unknown = runCli(["vm", "view", "nope", "--state-dir", dir.path]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("no looking-glass-client config for VM nope");
      mkdirSync(join(dir.path, "vms"));
      writeFileSync(join(dir.path, "vms", "a.looking-glass.ini"), "[app]\n");
      const missing = runCli(["vm", "view", "a", "--state-dir", dir.path, "--client", "looking-glass-client-not-installed"]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("not installed");
      expect(runCli(["vm", "view", "../a", "--state-dir", dir.path]).stderr).toContain("invalid VM name");
    } finally {
      dir.cleanup();
    }
  });
});
