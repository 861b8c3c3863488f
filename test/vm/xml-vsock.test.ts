/** <vsock model='virtio'> in a VM definition when configured: schema-valid, and libvirt's test driver defines it. */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseVmSpec } from "../../src/vm/model.ts";
import { buildDomainXml } from "../../src/vm/xml.ts";
import { tempDir } from "../helpers/env.ts";

const dir = tempDir("neuron-vmxml-vsock-");
afterAll(() => dir.cleanup());
const HAVE = Bun.which("virt-xml-validate") !== null && Bun.which("virsh") !== null;

describe("vsock device", () => {
  test("absent unless configured", () => {
    expect(buildDomainXml(parseVmSpec({ name: "a", template: "win11" }))).not.toContain("<vsock");
  });

  test("an auto CID, and a fixed one", () => {
    const auto = buildDomainXml(parseVmSpec({ name: "b", template: "linux", vsock: {} }));
    expect(auto).toMatch(/<vsock model="virtio">\s*<cid auto="yes"\/>\s*<\/vsock>/);
    const fixed = buildDomainXml(parseVmSpec({ name: "c", template: "linux", vsock: { cid: 42 } }));
    expect(fixed).toMatch(/<cid auto="no" address="42"\/>/);
  });

  test("a reserved CID is refused", () => {
    expect(() => parseVmSpec({ name: "d", template: "linux", vsock: { cid: 2 } })).toThrow();
    expect(() => parseVmSpec({ name: "d", template: "linux", vsock: { cid: 5, port: 1 } })).toThrow();
  });

  test.skipIf(!HAVE)("validates against libvirt's schema and defines on the test driver", () => {
    const xml = buildDomainXml(parseVmSpec({ name: "vsockvm", template: "linux", vsock: { cid: 7 } }));
    const file = join(dir.path, "vsock.xml");
    writeFileSync(file, xml);
    const v = Bun.spawnSync(["virt-xml-validate", file, "domain"], { stdout: "pipe", stderr: "pipe" });
    expect(v.stderr.toString() + v.stdout.toString()).toContain("validates");
    const d = Bun.spawnSync(["virsh", "-c", "test:///default", "define", file], { stdout: "pipe", stderr: "pipe" });
    expect(d.stderr.toString()).toBe("");
    expect(d.exitCode).toBe(0);
  });
});
