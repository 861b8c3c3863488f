/**
 * The appliance's QMP monitor socket in a VM definition: the path rule, QEMU's
 * option quoting, the directory QEMU creates it in, and the XML libvirt accepts
 * (virt-xml-validate and `virsh define` on the test driver).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppError } from "../../src/errors.ts";
import { execFile } from "../../src/exec.ts";
import { ensureQmpDir, qmpArgument, vmQmpSocket } from "../../src/vm/qmp-socket.ts";
import { parseSpec, planVm } from "../../src/vm/service.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { buildDomainXml } from "../../src/vm/xml.ts";
import { tempDir } from "../helpers/env.ts";

const dir = tempDir("neuron-qmpsock-");
afterAll(() => dir.cleanup());

function expectInvalid(fn: () => unknown, text: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).errorCode).toBe("INVALID_INPUT");
    expect((err as AppError).message).toContain(text);
    return;
  }
  throw new Error("expected INVALID_INPUT");
}

describe("the QMP socket path", () => {
  test("<qmpDir>/<vm>.qmp for a valid name", () => {
    expect(vmQmpSocket("/var/lib/neuron-appliance-qmp", "win11")).toBe("/var/lib/neuron-appliance-qmp/win11.qmp");
  });

  test("names with path separators, XML or option metacharacters are refused", () => {
    for (const bad of ["../etc", "a/b", "a,server=on", "<x>", "", ".hidden", "a b", "x".repeat(65)]) expectInvalid(() => vmQmpSocket("/q", bad), "invalid VM name");
  });

  test("a path past the unix socket limit is refused with the limit named", () => {
    expectInvalid(() => vmQmpSocket("/" + "d".repeat(90), "a-long-vm-name"), "unix socket limit");
  });

  test("QEMU's option syntax: commas doubled; NUL and newline refused", () => {
    expect(qmpArgument("/run/q/w.qmp")).toBe("unix:/run/q/w.qmp,server=on,wait=off");
    expect(qmpArgument("/run/a,b/w.qmp")).toBe("unix:/run/a,,b/w.qmp,server=on,wait=off");
    expectInvalid(() => qmpArgument("/run/q\n/w.qmp"), "NUL or newline");
    expectInvalid(() => qmpArgument("/run/q\0/w.qmp"), "NUL or newline");
  });
});

describe.skipIf(process.getuid?.() !== 0)("the QMP directory (root: chown)", () => {
  test("created 0750, owned by the owner of libvirt's QEMU directory; owner and mode repaired", () => {
    const libvirtQemu = join(dir.path, "libvirt-qemu");
    mkdirSync(libvirtQemu);
    chownSync(libvirtQemu, 65534, 65534); // as if libvirt ran QEMU as nobody
    const qmp = join(dir.path, "sub", "qmp");
    expect(ensureQmpDir(qmp, libvirtQemu)).toEqual({ uid: 65534, gid: 65534 });
    let st = statSync(qmp);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([65534, 65534, 0o750]);
    chownSync(qmp, 0, 0);
    chmodSync(qmp, 0o777);
    ensureQmpDir(qmp, libvirtQemu);
    st = statSync(qmp);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([65534, 65534, 0o750]);
  });

  test("a file where the directory should be is a clear error", () => {
    const f = join(dir.path, "not-a-dir");
    writeFileSync(f, "");
    expect(() => ensureQmpDir(f, dir.path)).toThrow(`cannot prepare ${f} (config qmpDir) for QEMU's user 0:0: EEXIST`);
  });
});

describe("the definition", () => {
  const spec = parseSpec({ name: "w1", template: "win11" });

  test("without a QMP socket: no qemu namespace, no command line", () => {
    const xml = buildDomainXml(spec);
    expect(xml).not.toContain("qemu:commandline");
    expect(xml).not.toContain("xmlns:qemu");
  });

  test("planVm with qmpDir puts -qmp unix:<qmpDir>/<vm>.qmp in <qemu:commandline>", () => {
    const plan = planVm({ name: "w1", template: "win11" }, { resolver: noPassthrough, cpuVendor: () => "amd", settings: { stateDir: dir.path, shmDir: "/dev/shm", root: "/", qmpDir: "/var/lib/a,b" } });
    expect(plan.xml).toContain('<domain type="kvm" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">');
    expect(plan.xml).toMatch(/<qemu:commandline>\s*<qemu:arg value="-qmp"\/>\s*<qemu:arg value="unix:\/var\/lib\/a,,b\/w1\.qmp,server=on,wait=off"\/>\s*<\/qemu:commandline>/);
  });

  test.skipIf(!Bun.which("virt-xml-validate") || !Bun.which("virsh"))("libvirt accepts it: virt-xml-validate and virsh define (test driver)", async () => {
    for (const template of ["win11", "win10", "linux"] as const) {
      const xml = buildDomainXml(parseSpec({ name: `q-${template}`, template }), { qmpSocket: `/var/lib/neuron-appliance-qmp/q-${template}.qmp` });
      const file = join(dir.path, `q-${template}.xml`);
      writeFileSync(file, xml);
      const v = await execFile(["virt-xml-validate", file]);
      expect(v.stderr + v.stdout).toContain("validates");
      expect(v.code).toBe(0);
      const d = await execFile(["virsh", "-c", "test:///default", "define", file]);
      expect(d.stderr).toBe("");
      expect(d.code).toBe(0);
    }
  });
});
