/**
 * Every template × option combination: the XML validates against libvirt's
 * schema (virt-xml-validate) and libvirt's test driver defines, starts,
 * destroys and undefines it (virsh names the bad attribute where the
 * validator is vague).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { domainFacts } from "../../src/vm/details.ts";
import { parseVmSpec, VM_TEMPLATES, type VmSpecInput } from "../../src/vm/model.ts";
import { domainXmlParser } from "../../src/vm/virsh.ts";
import { AGENT_CHANNEL, buildDomainXml, QEMU_GA_CHANNEL, type BuildOptions } from "../../src/vm/xml.ts";
import { tempDir } from "../helpers/env.ts";

const dir = tempDir("neuron-vmxml-");
afterAll(() => dir.cleanup());

const HAVE = Bun.which("virt-xml-validate") !== null && Bun.which("virsh") !== null;

function run(argv: string[]) {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

type Variant = { label: string; spec: Partial<VmSpecInput>; opts?: BuildOptions };
const VARIANTS: Variant[] = [
  { label: "defaults", spec: {} },
  {
    label: "GPU with audio function, AMD host, pinning, hugepages, 4K HDR",
    spec: { gpu: "0000:01:00.0", vcpus: 4, topology: { sockets: 1, cores: 2, threads: 2 }, pinning: [2, 3, 6, 7], hugepages: true, resolution: { width: 3840, height: 2160 }, hdr: true },
    opts: { cpuVendor: "amd", hostdevs: ["0000:01:00.0", "0000:01:00.1"] },
  },
  {
    label: "new disk, install media, bridge, headless",
    spec: { disk: { kind: "new", sizeGiB: 64 }, osIso: "/srv/iso/os.iso", virtioIso: "/srv/iso/virtio-win.iso", network: { kind: "bridge", bridge: "br0" }, graphics: "none" },
    opts: { diskPath: "/var/lib/neuron/vms/x.qcow2", cpuVendor: "intel" },
  },
  { label: "no network, no secure boot, no TPM, no Hyper-V, TCG", spec: { network: { kind: "none" }, secureBoot: false, tpm: false, hyperv: false }, opts: { domainType: "qemu" } },
];

describe("buildDomainXml: every template × option set", () => {
  for (const template of VM_TEMPLATES)
    for (const v of VARIANTS)
      test.skipIf(!HAVE)(`${template}: ${v.label} — virt-xml-validate + virsh test driver`, () => {
        const name = `${template}-${VARIANTS.indexOf(v)}`;
        const spec = parseVmSpec({ name, template, ...v.spec });
        const xml = buildDomainXml(spec, v.opts);
        const file = join(dir.path, `${name}.xml`);
        writeFileSync(file, xml);
        const val = run(["virt-xml-validate", file, "domain"]);
        expect(val.err + val.out).toContain("validates");
        expect(val.code).toBe(0);
        // The test driver keeps state only for one connection: one virsh, several commands.
        const r = run(["virsh", "-q", "-c", "test:///default", `define --validate ${file}; start ${name}; domstate ${name}; dumpxml ${name}; destroy ${name}; domstate ${name}; undefine ${name}`]);
        expect(r.err).toBe("");
        expect(r.code).toBe(0);
        expect(r.out).toMatch(/running[\s\S]*shut off/);
        const live = r.out.slice(r.out.indexOf("<domain"), r.out.indexOf("</domain>") + 9);
        const facts = domainFacts(live, "/dev/shm");
        expect(facts.shm).toEqual({ name: `looking-glass-${name}`, sizeMiB: v.spec.hdr ? 256 : 32, path: `/dev/shm/looking-glass-${name}` });
        expect(facts.hostdevs).toEqual(v.opts?.hostdevs ?? []);
        expect(facts.channels.map((c) => c.name)).toEqual([AGENT_CHANNEL, QEMU_GA_CHANNEL]);
      });
});

describe("domain XML content", () => {
  const tree = (xml: string) => domainXmlParser.parse(xml).domain;

  test("win11: UEFI chosen by libvirt with Secure Boot + enrolled keys, SMM, TPM 2.0 CRB, Hyper-V, hypervclock", () => {
    const xml = buildDomainXml(parseVmSpec({ name: "w", template: "win11" }));
    const d = tree(xml);
    expect(d.os["@_firmware"]).toBe("efi");
    expect(xml).not.toContain("OVMF");
    expect(d.os.firmware.feature.map((f: Record<string, string>) => `${f["@_name"]}=${f["@_enabled"]}`)).toEqual(["secure-boot=yes", "enrolled-keys=yes"]);
    expect(d.features.smm["@_state"]).toBe("on");
    expect(d.devices.tpm).toMatchObject({ "@_model": "tpm-crb", backend: { "@_type": "emulator", "@_version": "2.0" } });
    const hv = Object.keys(d.features.hyperv).filter((k) => !k.startsWith("@_"));
    expect(hv).toEqual(["relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset", "vendor_id", "frequencies", "tlbflush", "ipi"]);
    expect(d.clock.timer.map((t: Record<string, string>) => t["@_name"])).toContain("hypervclock");
    expect(d.cpu["@_mode"]).toBe("host-passthrough");
    expect(d.os.type["@_machine"]).toBe("q35");
  });

  test("win10 and linux: no Secure Boot, no SMM, no TPM; linux has no Hyper-V", () => {
    for (const template of ["win10", "linux"] as const) {
      const d = tree(buildDomainXml(parseVmSpec({ name: "x", template })));
      expect(d.features.smm).toBeUndefined();
      expect(d.devices.tpm).toBeUndefined();
      expect(d.features.hyperv === undefined).toBe(template === "linux");
    }
  });

  test("passthrough: managed hostdev per function, no emulated video, memballoon none; topoext only on AMD", () => {
    const spec = parseVmSpec({ name: "g", template: "win11", gpu: "0000:0A:00.0" });
    expect(spec.gpu).toBe("0000:0a:00.0");
    const d = tree(buildDomainXml(spec, { hostdevs: ["0000:0a:00.0", "0000:0a:00.1"], cpuVendor: "amd" }));
    expect(d.devices.hostdev).toHaveLength(2);
    expect(d.devices.hostdev[1]).toMatchObject({ "@_mode": "subsystem", "@_type": "pci", "@_managed": "yes", source: { address: { "@_bus": "0x0a", "@_function": "0x1" } } });
    expect(d.devices.video.model["@_type"]).toBe("none");
    expect(d.devices.memballoon["@_model"]).toBe("none");
    expect(d.cpu.feature["@_name"]).toBe("topoext");
    const intel = tree(buildDomainXml(spec, { hostdevs: ["0000:0a:00.0"], cpuVendor: "intel" }));
    expect(intel.cpu.feature).toBeUndefined();
    const none = tree(buildDomainXml(parseVmSpec({ name: "n", template: "linux" })));
    expect(none.devices.memballoon["@_model"]).toBe("virtio");
  });

  test("virtio keyboard, mouse and an absolute tablet; two unix agent channels; spice channel only with spice", () => {
    const d = tree(buildDomainXml(parseVmSpec({ name: "i", template: "win10" })));
    expect(d.devices.input.map((i: Record<string, string>) => `${i["@_type"]}/${i["@_bus"]}`)).toEqual(["keyboard/virtio", "mouse/virtio", "tablet/virtio"]);
    expect(d.devices.channel.map((c: Record<string, Record<string, string>>) => c.target!["@_name"])).toEqual([AGENT_CHANNEL, QEMU_GA_CHANNEL, "com.redhat.spice.0"]);
    const headless = tree(buildDomainXml(parseVmSpec({ name: "i", template: "win10", graphics: "none" })));
    expect(headless.devices.channel).toHaveLength(2);
    expect(headless.devices.graphics).toBeUndefined();
  });

  test.skipIf(!HAVE)("XML metacharacters in a path are escaped and reach libvirt intact", () => {
    const path = `/srv/a'b"c<d>&e.qcow2`;
    const spec = parseVmSpec({ name: "esc", template: "linux", disk: { kind: "existing", path } });
    const xml = buildDomainXml(spec, { diskPath: path });
    expect(xml).toContain("a&apos;b&quot;c&lt;d&gt;&amp;e.qcow2");
    const file = join(dir.path, "esc.xml");
    writeFileSync(file, xml);
    const r = run(["virsh", "-q", "-c", "test:///default", `define ${file}; dumpxml esc`]);
    expect(r.code).toBe(0);
    expect(domainFacts(r.out.slice(r.out.indexOf("<domain")), "/dev/shm").disks).toEqual([path]);
  });
});
