/** VM sizing from the host: memory and vCPUs leave the host its share, SMT topology, pinning by core, EDID resolution; planVm's host defaults and warnings. */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { planVm } from "../../src/vm/service.ts";
import { edidPreferredMode, hostCpu, hostMonitors, parseCpuList, sizeVm, DEFAULT_HOST_SHARE } from "../../src/vm/sizing.ts";
import { ivshmemSizeMiB } from "../../src/vm/shm.ts";
import { tempDir } from "../helpers/env.ts";
import { edid, machine } from "../setup/helpers.ts";

const dir = tempDir("neuron-sizing-");
afterAll(() => dir.cleanup());
let n = 0;
const host = (x: Parameters<typeof machine>[2]) => machine("desktop-intel-nvidia", join(dir.path, `m${++n}`), x);

describe("VM sizing from the host", () => {
  test("32 GiB, 8 cores with SMT: the host keeps a quarter; topology 1×6×2; pinning takes whole cores from the top", () => {
    const s = sizeVm(host({}), DEFAULT_HOST_SHARE);
    expect(s).toMatchObject({ memoryMiB: 24576, vcpus: 12, topology: { sockets: 1, cores: 6, threads: 2 }, hostCpus: 16, warnings: [] });
    expect(s.pinning).toEqual([2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15]);
  });

  test("no SMT: threads 1; a small host keeps its minimum and the VM gets Windows' minimum with a warning; explicit values win", () => {
    const root = host({ memTotalKiB: 6 * 1024 * 1024, cores: [[0], [1], [2], [3]], smt: false });
    const s = sizeVm(root, DEFAULT_HOST_SHARE);
    expect(s).toMatchObject({ memoryMiB: 4096, vcpus: 2, topology: { sockets: 1, cores: 2, threads: 1 } });
    expect(s.warnings[0]).toContain("4 GiB");
    expect(sizeVm(root, { ...DEFAULT_HOST_SHARE, memoryPercent: 50, memoryMinMiB: 0 }, { vcpus: 3 })).toMatchObject({ vcpus: 3, topology: { cores: 3, threads: 1 } });
    expect(hostCpu(root).threadsPerCore).toBe(1);
    expect(parseCpuList("0-2,8,10-11")).toEqual([0, 1, 2, 8, 10, 11]);
  });

  test("the resolution comes from the connected monitor's EDID, and the Looking Glass size fits it", () => {
    const root = host({ monitor: { connector: "DP-2", width: 3840, height: 2160 } });
    expect(hostMonitors(root)).toEqual([{ connector: "DP-2", resolution: { width: 3840, height: 2160 } }]);
    expect(ivshmemSizeMiB(hostMonitors(root)[0]!.resolution, false)).toBe(128);
    expect(hostMonitors(host({ monitor: null }))).toEqual([]);
    expect(edidPreferredMode(edid(2560, 1440))).toEqual({ width: 2560, height: 1440 });
    const bad = edid(2560, 1440);
    bad[0] = 1;
    expect(edidPreferredMode(bad)).toBeNull();
    expect(edidPreferredMode(new Uint8Array(10))).toBeNull();
  });

  test("planVm: topology threads from the host's SMT when none is given; an install ISO without virtio drivers is a warning", () => {
    const root = host({});
    const deps = { resolver: { functionsOf: () => [] }, cpuVendor: () => "intel" as const, settings: { stateDir: dir.path, shmDir: "/dev/shm", root } };
    const p = planVm({ name: "w", template: "win11", vcpus: 8, osIso: "/srv/win.iso", disk: { kind: "new", sizeGiB: 64 } }, deps);
    expect(p.spec.topology).toEqual({ sockets: 1, cores: 4, threads: 2 });
    expect(p.xml).toContain('threads="2"');
    expect(p.warnings[0]).toContain("virtio");
    expect(planVm({ name: "w", template: "win11", vcpus: 7 }, deps).spec.topology.threads).toBe(1);
    expect(planVm({ name: "w", template: "win11", vcpus: 8, topology: { sockets: 1, cores: 8, threads: 1 } }, deps).spec.topology.threads).toBe(1);
    expect(planVm({ name: "w", template: "win11", osIso: "/a.iso", virtioIso: "/v.iso", disk: { kind: "new", sizeGiB: 64 } }, deps).warnings).toEqual([]);
  });
});
