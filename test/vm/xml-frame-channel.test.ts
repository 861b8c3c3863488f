/**
 * The frames channel (spec.frameChannel): a virtio-serial port org.neuronos.frames.0 whose host
 * side connects to the NVF1 listener socket, beside <vsock model='virtio'>; schema-valid,
 * defined by libvirt's test driver, and read back by the transport chooser.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chooseVmTransport, domainFrameChannel } from "../../src/capture/sources.ts";
import { parseVmSpec } from "../../src/vm/model.ts";
import { buildDomainXml, FRAME_CHANNEL, vmFrameSocket } from "../../src/vm/xml.ts";
import { tempDir } from "../helpers/env.ts";

const dir = tempDir("neuron-vmxml-frames-");
afterAll(() => dir.cleanup());
const HAVE = Bun.which("virt-xml-validate") !== null && Bun.which("virsh") !== null;
const sock = (vm: string) => vmFrameSocket(join(dir.path, "frames"), vm);

describe("frames channel", () => {
  test("absent unless configured", () => {
    const xml = buildDomainXml(parseVmSpec({ name: "a", template: "linux" }), { frameSocket: sock("a") });
    expect(xml).not.toContain(FRAME_CHANNEL);
    expect(domainFrameChannel(xml)).toBeNull();
  });

  test("a unix chardev that connects to the listener and keeps trying, beside the vsock device", () => {
    const xml = buildDomainXml(parseVmSpec({ name: "b", template: "linux", vsock: {}, frameChannel: true }), { frameSocket: sock("b") });
    expect(xml).toMatch(new RegExp(`<source mode="connect" path="${sock("b")}">\\s*<reconnect enabled="yes" timeout="2"/>\\s*</source>\\s*<target type="virtio" name="${FRAME_CHANNEL}"/>`));
    expect(xml).toContain('<vsock model="virtio">');
    expect(domainFrameChannel(xml)).toEqual({ socketPath: sock("b") });
  });

  test("without a socket directory, or with a path a unix socket cannot have, it is a clear error", () => {
    const spec = parseVmSpec({ name: "c", template: "linux", frameChannel: true });
    expect(() => buildDomainXml(spec)).toThrow("frameChannel: no host frame socket directory is configured");
    expect(() => buildDomainXml(spec, { frameSocket: `/${"x".repeat(120)}.nvf` })).toThrow("at most 107 bytes");
    expect(() => buildDomainXml(spec, { frameSocket: "relative.nvf" })).toThrow("must be an absolute path");
  });

  test("the transport chooser names the channel when it picks the unix socket", () => {
    const xml = buildDomainXml(parseVmSpec({ name: "d", template: "linux", frameChannel: true }), { frameSocket: sock("d") });
    const c = chooseVmTransport("d", xml, { shmDir: join(dir.path, "shm"), vsockDevice: join(dir.path, "no-vhost"), frameSocketDir: join(dir.path, "frames") });
    expect(c).toMatchObject({ kind: "unix", socketPath: sock("d") });
    expect(c.reason).toContain(`virtio-serial channel ${FRAME_CHANNEL}`);
    const plain = chooseVmTransport("e", buildDomainXml(parseVmSpec({ name: "e", template: "linux" })), { shmDir: join(dir.path, "shm"), vsockDevice: join(dir.path, "no-vhost"), frameSocketDir: join(dir.path, "frames") });
    expect(plain.reason).toContain("has no frames channel");
  });

  test.skipIf(!HAVE)("validates against libvirt's schema and defines on the test driver", () => {
    const xml = buildDomainXml(parseVmSpec({ name: "framesvm", template: "linux", vsock: { cid: 7 }, frameChannel: true }), { frameSocket: sock("framesvm") });
    const file = join(dir.path, "frames.xml");
    writeFileSync(file, xml);
    const v = Bun.spawnSync(["virt-xml-validate", file, "domain"], { stdout: "pipe", stderr: "pipe" });
    expect(v.stderr.toString() + v.stdout.toString()).toContain("validates");
    const d = Bun.spawnSync(["virsh", "-c", "test:///default", "define", file], { stdout: "pipe", stderr: "pipe" });
    expect(d.stderr.toString()).toBe("");
    expect(d.exitCode).toBe(0);
  });
});
