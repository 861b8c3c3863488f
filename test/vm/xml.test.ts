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
import { graphicsListens, vmGraphicsSocket } from "../../src/vm/graphics-socket.ts";
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
const SPICE_DIR = "/var/lib/neuron-appliance-spice";
const VARIANTS: Variant[] = [
  { label: "defaults (SPICE with no socket directory: listens nowhere)", spec: {} },
  { label: "SPICE on a unix socket", spec: {}, opts: { graphicsSocket: `${SPICE_DIR}/s.spice` } },
  { label: "VNC on a unix socket", spec: { graphics: "vnc" }, opts: { graphicsSocket: `${SPICE_DIR}/v.vnc`, qmpSocket: "/var/lib/neuron-appliance-qmp/v.qmp" } },
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
  { label: "USB keyboard, mouse and tablet", spec: { inputDevices: "usb" } },
  { label: "PS/2 only (the i8042 pair libvirt adds)", spec: { inputDevices: "ps2" }, opts: { domainType: "qemu" } },
  { label: "sound to the VM's own PulseAudio sink", spec: {}, opts: { audio: { server: "/run/user/1000/pulse/native", sink: "neuron-vm-x" } } },
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
        // never a TCP display, neither as written nor as libvirt completes it
        for (const text of [xml, live]) {
          expect(text).not.toMatch(/<listen[^>]*type=["']address/);
          expect(text).not.toMatch(/autoport|port=|listen=/);
          expect(graphicsListens(text).flatMap((g) => g.tcp)).toEqual([]);
        }
        const socket = v.opts?.graphicsSocket;
        if (socket) expect(graphicsListens(live).flatMap((g) => g.sockets)).toEqual([socket]);
      });
});

describe("domain XML content", () => {
  test("ich9 HDA with its audio backend (the VM's own sink, or none); the KVM IOAPIC on q35 (not under TCG)", () => {
    const spec = parseVmSpec({ name: "snd", template: "win11" });
    const withSink = buildDomainXml(spec, { audio: { server: "/run/user/1000/pulse/native", sink: "neuron-vm-snd" } });
    expect(withSink).toMatch(/<sound model="ich9">\s*<audio id="1"><\/audio>|<sound model="ich9">\s*<audio id="1"\/>/);
    expect(withSink).toContain('<audio id="1" type="pulseaudio" serverName="/run/user/1000/pulse/native">');
    expect(withSink).toContain('name="neuron-vm-snd" streamName="snd"');
    expect(buildDomainXml(spec)).toContain('<audio id="1" type="none"');
    expect(buildDomainXml(spec)).toContain('<ioapic driver="kvm"');
    expect(buildDomainXml(spec, { domainType: "qemu" })).not.toContain("ioapic");
    expect(() => buildDomainXml(spec, { audio: { server: "relative", sink: "x" } })).toThrow(/absolute/);
    expect(() => buildDomainXml(spec, { audio: { server: "/s", sink: "a'b" } })).toThrow(/plain name/);
  });

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
    const vnc = tree(buildDomainXml(parseVmSpec({ name: "i", template: "win10", graphics: "vnc" })));
    expect(vnc.devices.channel).toHaveLength(2);
  });

  test("input devices: virtio, USB (usb-kbd, usb-mouse, usb-tablet) or PS/2 only; an unknown bus is refused", () => {
    const inputs = (inputDevices?: "virtio" | "usb" | "ps2") => {
      const i = tree(buildDomainXml(parseVmSpec({ name: "i", template: "linux", ...(inputDevices ? { inputDevices } : {}) }))).devices.input as Record<string, string>[] | undefined;
      return (i ?? []).map((x) => `${x["@_type"]}/${x["@_bus"]}`);
    };
    expect(inputs()).toEqual(["keyboard/virtio", "mouse/virtio", "tablet/virtio"]);
    expect(inputs("usb")).toEqual(["keyboard/usb", "mouse/usb", "tablet/usb"]);
    expect(inputs("ps2")).toEqual([]);
    expect(() => parseVmSpec({ name: "i", template: "linux", inputDevices: "serial" })).toThrow(/inputDevices/);
  });

  test("SPICE and VNC listen on the unix socket only: no port, no autoport, no address; VNC has no SPICE channel", () => {
    const spice = tree(buildDomainXml(parseVmSpec({ name: "s", template: "win11" }), { graphicsSocket: `${SPICE_DIR}/s.spice` }));
    expect(spice.devices.graphics).toEqual({ "@_type": "spice", listen: { "@_type": "socket", "@_socket": `${SPICE_DIR}/s.spice` }, image: { "@_compression": "off" } });
    const vnc = tree(buildDomainXml(parseVmSpec({ name: "v", template: "linux", graphics: "vnc" }), { graphicsSocket: `${SPICE_DIR}/v.vnc` }));
    expect(vnc.devices.graphics).toEqual({ "@_type": "vnc", listen: { "@_type": "socket", "@_socket": `${SPICE_DIR}/v.vnc` } });
    expect(vnc.devices.channel).toHaveLength(2);
    // no socket directory: the display exists but listens nowhere
    expect(tree(buildDomainXml(parseVmSpec({ name: "n", template: "linux" }))).devices.graphics.listen).toEqual({ "@_type": "none" });
  });

  test("display socket paths: <spiceDir>/<vm>.spice|.vnc; bad names, long paths, control characters refused", () => {
    expect(vmGraphicsSocket(SPICE_DIR, "win11", "spice")).toBe(`${SPICE_DIR}/win11.spice`);
    expect(vmGraphicsSocket(SPICE_DIR, "win11", "vnc")).toBe(`${SPICE_DIR}/win11.vnc`);
    expect(() => vmGraphicsSocket(SPICE_DIR, "../etc/x", "spice")).toThrow("invalid VM name");
    expect(() => vmGraphicsSocket(SPICE_DIR, "a/b", "spice")).toThrow("invalid VM name");
    const long = "/srv/" + "d".repeat(90);
    expect(() => vmGraphicsSocket(long, "vm-with-a-name", "spice")).toThrow(`SPICE socket path ${long}/vm-with-a-name.spice is longer than 107 bytes (unix socket limit): use a shorter spiceDir or VM name`);
    // 107 bytes is the most sun_path holds
    const edge = "/" + "e".repeat(107 - 1 - "/a.vnc".length);
    expect(vmGraphicsSocket(edge, "a", "vnc")).toHaveLength(107);
    expect(() => vmGraphicsSocket(edge + "e", "a", "vnc")).toThrow("longer than 107 bytes");
    expect(() => vmGraphicsSocket("/srv/a\nb", "a", "spice")).toThrow("NUL or newline");
    expect(() => buildDomainXml(parseVmSpec({ name: "s", template: "linux" }), { graphicsSocket: "/x\0y" })).toThrow("without NUL or newline");
    expect(() => buildDomainXml(parseVmSpec({ name: "s", template: "linux" }), { graphicsSocket: "rel/x.spice" })).toThrow("must be absolute");
  });

  test("graphicsListens: TCP in every form is named (VMs defined before the unix sockets)", () => {
    const dom = (g: string) => `<domain><devices>${g}</devices></domain>`;
    expect(graphicsListens(dom(`<graphics type='spice' autoport='yes'><listen type='address' address='127.0.0.1'/><image compression='off'/></graphics>`))).toEqual([
      { type: "spice", sockets: [], tcp: ["address 127.0.0.1"] },
    ]);
    expect(graphicsListens(dom(`<graphics type='vnc' port='5901' listen='0.0.0.0'/>`))[0]!.tcp).toEqual(["address 0.0.0.0"]);
    expect(graphicsListens(dom(`<graphics type='vnc' port='-1'/>`))[0]!.tcp).toEqual(["address (qemu.conf default)"]);
    expect(graphicsListens(dom(`<graphics type='spice'><listen type='network' network='default'/></graphics>`))[0]!.tcp).toEqual(["network default"]);
    expect(graphicsListens(dom(`<graphics type='spice'><listen type='none'/></graphics>`))[0]).toEqual({ type: "spice", sockets: [], tcp: [] });
    expect(graphicsListens(dom(`<graphics type='vnc' socket='/s/v.vnc'><listen type='socket' socket='/s/v.vnc'/></graphics>`))[0]).toEqual({ type: "vnc", sockets: ["/s/v.vnc"], tcp: [] });
    expect(graphicsListens(dom(`<graphics type='egl-headless'/>`))[0]!.tcp).toEqual([]);
    expect(graphicsListens(dom(""))).toEqual([]);
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
