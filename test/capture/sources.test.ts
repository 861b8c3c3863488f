/**
 * Frame-source kinds and the VM transport choice (IVSHMEM → vsock → unix socket): the
 * service against fixture paths, a VM definition built by the appliance and read through
 * libvirt's test driver, the API (GET /capture/sources, /capture/transport/:vm) and the CLI.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { chooseVmTransport, domainVsock, probeSourceKinds, SOURCE_KINDS } from "../../src/capture/sources.ts";
import { hostOutputBackends } from "../../src/capture/host-output.ts";
import { parseVmSpec } from "../../src/vm/model.ts";
import { shmName } from "../../src/vm/shm.ts";
import { buildDomainXml } from "../../src/vm/xml.ts";
import { asRoot } from "../helpers/api.ts";
import { runCli, tempDir, testCore } from "../helpers/env.ts";

const dir = tempDir("neuron-sources-");
afterAll(() => dir.cleanup());
const shmDir = join(dir.path, "shm");
const frameDir = join(dir.path, "frames");
mkdirSync(shmDir);
const vhost = join(dir.path, "vhost-vsock");
const HAVE_VIRSH = Bun.which("virsh") !== null;

const xmlOf = (name: string, spec: Record<string, unknown> = {}) => buildDomainXml(parseVmSpec({ name, template: "linux", ...spec }));

describe("source kinds", () => {
  test("every kind is listed; unavailable ones say why", () => {
    const kinds = probeSourceKinds({ shmDir, vsockDevice: vhost, frameSocketDir: frameDir, nativeError: null, hostOutputBackends: [] });
    expect(kinds.map((k) => k.kind)).toEqual([...SOURCE_KINDS]);
    const by = Object.fromEntries(kinds.map((k) => [k.kind, k]));
    expect(by.kvmfr).toMatchObject({ available: true });
    expect(by.unix).toMatchObject({ available: true });
    expect(by.vsock).toMatchObject({ available: false, reason: expect.stringContaining(`no ${vhost}`) });
    expect(by["host-virtual-output"]!.available).toBe(false);
    expect(by["host-virtual-output"]!.reason).toContain("no compositor offers a virtual output");
    expect(by["host-virtual-output"]!.backends).toEqual([]);
    // every backend listed with its own verdict
    const backends = hostOutputBackends(null, { busAddress: null, pipewireSocket: null, which: () => null });
    const host = probeSourceKinds({ shmDir, vsockDevice: vhost, frameSocketDir: frameDir, nativeError: null, hostOutputBackends: backends }).find((k) => k.kind === "host-virtual-output")!;
    expect(host.backends!.map((b) => b.name)).toEqual(["mutter", "weston", "kwin", "gamescope", "wlroots"]);
    expect(host.backends!.find((b) => b.name === "gamescope")).toEqual({ name: "gamescope", available: false, reason: "gamescope is not installed" });
    expect(host.backends!.find((b) => b.name === "wlroots")).toEqual({ name: "wlroots", available: false, reason: "the native library is not loaded" });
    for (const k of kinds) if (k.available) expect(k.reason).toBeUndefined();
  });

  test("a missing shm directory and a missing native library are reasons, not crashes", () => {
    const none = probeSourceKinds({ shmDir: join(dir.path, "nope"), vsockDevice: vhost, frameSocketDir: "/nonexistent/a/b", nativeError: "libneuron.so not found", hostOutputBackends: null });
    for (const k of none) expect(k.reason).toContain("the native library is not loaded: libneuron.so not found");
    const noShm = probeSourceKinds({ shmDir: join(dir.path, "nope"), vsockDevice: vhost, frameSocketDir: "/nonexistent/a/b", nativeError: null, hostOutputBackends: [] });
    expect(noShm[0]!.reason).toContain("does not exist");
    expect(noShm[3]!.reason).toContain("cannot be created");
  });
});

describe("VM transport: IVSHMEM → vsock → unix socket", () => {
  const host = { shmDir, vsockDevice: vhost, frameSocketDir: frameDir };

  test("IVSHMEM when the VM has it and its region exists", () => {
    const xml = xmlOf("lg", { vsock: {} });
    writeFileSync(join(shmDir, shmName("lg")), "");
    const c = chooseVmTransport("lg", xml, host);
    expect(c.kind).toBe("kvmfr");
    expect(c.reason).toContain(join(shmDir, shmName("lg")));
  });

  test("vsock when there is no region but the VM has a vsock device and the host vhost-vsock", () => {
    const xml = xmlOf("vs", { vsock: { cid: 9 } });
    expect(domainVsock(xml)).toEqual({ present: true, cid: 9 });
    writeFileSync(vhost, "");
    try {
      const c = chooseVmTransport("vs", xml, host);
      expect(c).toMatchObject({ kind: "vsock", vsockCid: 9, socketPath: null });
      expect(c.reason).toContain("not kvmfr: the VM's shared memory");
    } finally {
      Bun.spawnSync(["rm", "-f", vhost]);
    }
    // the same VM on a host without vhost-vsock falls through to the unix socket
    const c2 = chooseVmTransport("vs", xml, host);
    expect(c2.kind).toBe("unix");
    expect(c2.socketPath).toBe(join(frameDir, "vs.nvf"));
    expect(c2.candidates.find((x) => x.kind === "vsock")!.reason).toContain(`the host has no ${vhost}`);
  });

  test("unix socket when the VM has neither", () => {
    const c = chooseVmTransport("plain", xmlOf("plain"), host);
    expect(c.kind).toBe("unix");
    expect(c.reason).toContain("vsock: the VM has no vsock device");
    expect(domainVsock(xmlOf("plain")).present).toBe(false);
  });
});

describe("API and CLI", () => {
  // libvirt's test driver with a node file holding the VM
  const node = join(dir.path, "node.xml");
  writeFileSync(node, `<node>${xmlOf("apivm", { vsock: {} }).replace(/<\?xml[^>]*>/, "")}</node>`);
  const ctx = testCore({ shmDir, vsockDevice: vhost, frameSocketDir: frameDir, libvirtUri: `test://${node}` });
  const app = createApp(ctx.core);
  afterAll(() => ctx.cleanup());
  const get = async (path: string) => {
    const res = await app.handle(asRoot(new Request(`http://localhost/api/v1${path}`)));
    return { status: res.status, body: (await res.json()) as any };
  };

  test("GET /capture/sources", async () => {
    const r = await get("/capture/sources");
    expect(r.status).toBe(200);
    expect(r.body.sources.map((s: { kind: string }) => s.kind)).toEqual([...SOURCE_KINDS]);
    expect(r.body.sources.find((s: { kind: string }) => s.kind === "vsock").reason).toContain("vhost");
  });

  test.skipIf(!HAVE_VIRSH)("GET /capture/transport/:vm reads the definition through libvirt", async () => {
    const r = await get("/capture/transport/apivm");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ vm: "apivm", kind: "unix" });
    expect(r.body.candidates).toHaveLength(3);
    expect((await get("/capture/transport/no-such-vm")).status).toBe(404);
    expect((await get("/capture/transport/bad%20name")).status).toBe(422);
  });

  test("neuron-appliance capture sources [--json]", () => {
    const env = { NEURON_SHM_DIR: shmDir, NEURON_VSOCK_DEVICE: vhost, NEURON_FRAME_SOCKET_DIR: frameDir };
    const j = runCli(["capture", "sources", "--json"], env);
    expect(j.stderr).toBe("");
    expect(j.code).toBe(0);
    const out = JSON.parse(j.stdout) as { sources: { kind: string; available: boolean; reason?: string }[] };
    expect(out.sources.map((s) => s.kind)).toEqual([...SOURCE_KINDS]);
    for (const s of out.sources) expect(s.available || (s.reason ?? "").length > 0).toBe(true);
    const t = runCli(["capture", "sources"], env);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^vsock\s+unavailable: no .*vhost-vsock/m);
    expect(runCli(["capture", "sources", "extra"], env).code).toBe(2);
  });
});
