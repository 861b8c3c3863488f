/**
 * The VM lifecycle against a real libvirtd (private instance, see libvirtd.ts):
 * create (qcow2 + shared memory + definition), start, inspect (agent socket,
 * IVSHMEM file), stop (ACPI then destroy), delete (with NVRAM), through the
 * service and the HTTP API, plus the failure paths.
 *
 * This sandbox's nested KVM refuses host-passthrough CPUs, Hyper-V flags and
 * SMM, so the booted VM is the linux template (no Hyper-V, no Secure Boot/SMM)
 * as a TCG domain (cpu mode "maximum"); the full Windows templates are checked
 * by xml.test.ts against the validator and libvirt's test driver.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import { AppError } from "../../src/errors.ts";
import { execFile } from "../../src/exec.ts";
import { idOf } from "../../src/vm/host.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { VmService, vmSideFiles, type VmServiceDeps } from "../../src/vm/service.ts";
import { Virsh } from "../../src/vm/virsh.ts";
import { run } from "../../src/cli/index.ts";
import { checkVmSharedMemory } from "../../src/vm/doctor.ts";
import { testConfig, testCore } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd, TEST_VIRSH_TIMEOUT_MS, type PrivateLibvirtd } from "./libvirtd.ts";
import { asRoot } from "../helpers/api.ts";

const SKIP = libvirtdUnavailable();
if (SKIP) console.warn(`libvirtd tests skipped: ${SKIP}`);

let daemon: PrivateLibvirtd;
let ctx: ReturnType<typeof testCore>;
let vms: VmService;
let deps: VmServiceDeps;
const kvmGid = idOf("/etc/group", "kvm") ?? 0;

async function expectError(p: Promise<unknown>, code: string): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).errorCode).toBe(code);
    return err as AppError;
  }
  throw new Error(`expected ${code}`);
}

beforeAll(async () => {
  if (SKIP) return;
  daemon = await startLibvirtd();
  ctx = testCore({ libvirtUri: daemon.uri, libvirtTimeoutMs: TEST_VIRSH_TIMEOUT_MS, shmDir: daemon.shmDir });
  deps = {
    virsh: daemon.virsh(),
    audit: vmAuditRepo(ctx.core.database.db),
    resolver: noPassthrough,
    settings: { stateDir: ctx.core.config.stateDir, shmDir: daemon.shmDir, qemuImg: "qemu-img", root: "/", targetRoot: join(daemon.dir, "target") },
    shmOwner: () => ({ uid: 0, gid: kvmGid, user: "root" }),
    cpuVendor: () => "other",
    domainType: "qemu",
  };
  vms = new VmService(deps);
}, 60_000);

afterAll(async () => {
  if (SKIP) return;
  // Leave no QEMU behind: destroy whatever still runs, then stop the daemon by its PID.
  for (const vm of await vms.list().catch(() => [])) if (vm.state === "running") await deps.virsh.destroy(vm.name).catch(() => undefined);
  await daemon.stop();
  ctx.cleanup();
}, 60_000);

const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  template: "linux",
  vcpus: 1,
  memoryMiB: 256,
  network: { kind: "none" },
  graphics: "none",
  ...extra,
});

describe.skipIf(SKIP !== null)("VM lifecycle on a real libvirtd", () => {
  test("create → start → show (agent socket, IVSHMEM) → stop → delete", async () => {
    const created = await vms.create(spec("life", { disk: { kind: "new", sizeGiB: 1 } }), "test");
    expect(created.disk).toBe(join(ctx.core.config.stateDir, "vms", "life.qcow2"));
    const info = JSON.parse((await execFile(["qemu-img", "info", "--output=json", created.disk!])).stdout);
    expect(info.format).toBe("qcow2");
    expect(info["virtual-size"]).toBe(1024 ** 3);
    const shmFile = join(daemon.shmDir, "looking-glass-life");
    expect(statSync(shmFile).size).toBe(32 * 1024 * 1024);
    expect(statSync(shmFile).mode & 0o777).toBe(0o660);
    expect(statSync(shmFile).gid).toBe(kvmGid);
    expect(await vms.list()).toContainEqual({ name: "life", state: "shut off" });
    const side = vmSideFiles(deps.settings, "life");
    expect(readFileSync(side.tmpfiles, "utf8")).toBe(`f ${join(daemon.shmDir, "looking-glass-life")} 0660 root kvm -\n`);
    expect(readFileSync(side.clientIni, "utf8")).toContain(`shmFile=${shmFile}`);

    const running = await vms.start("life", "test");
    expect(running.state).toBe("running");
    expect(running.id).toBeGreaterThan(0);
    expect(running.template).toBe("linux");
    expect(running.shm).toEqual({ name: "looking-glass-life", sizeMiB: 32, path: shmFile });
    expect(running.agentSocket).toMatch(/\/org\.neuronos\.agent\.0$/);
    expect(running.channels.map((c) => c.name)).toEqual(["org.neuronos.agent.0", "org.qemu.guest_agent.0"]);
    // QEMU listens on the agent socket libvirt assigned.
    const sock = daemon.hostPath(running.agentSocket!);
    await new Promise<void>((resolve, reject) => {
      const c = connect(sock, () => {
        c.destroy();
        resolve();
      });
      c.on("error", reject);
    });
    // The guest's IVSHMEM backing is the file we provisioned, still 32 MiB.
    expect(statSync(shmFile).size).toBe(32 * 1024 * 1024);
    await expectError(vms.start("life"), "CONFLICT");
    await expectError(vms.remove("life"), "CONFLICT");

    const stopped = await vms.stop("life", { timeoutSeconds: 2 }, "test");
    expect(stopped.state).toBe("shut off");
    expect(["acpi", "destroy"]).toContain(stopped.method);
    expect((await vms.stop("life")).method).toBe("already-off");

    const nvramDir = daemon.hostPath("/var/lib/libvirt/qemu/nvram");
    expect(readdirSync(nvramDir)).toContain("life_VARS.fd");
    await vms.remove("life", { deleteDisk: true }, "test");
    expect(readdirSync(nvramDir)).not.toContain("life_VARS.fd");
    expect(existsSync(created.disk!)).toBe(false);
    expect(existsSync(side.tmpfiles) || existsSync(side.clientIni)).toBe(false);
    expect(await deps.virsh.exists("life")).toBe(false);
    const actions = deps.audit.forVm("life").map((r) => `${r.action}:${r.status}`).reverse();
    expect(actions).toEqual(["vm.define:applied", "vm.start:applied", "vm.stop:applied", "vm.undefine:applied"]);
  }, 60_000);

  test("doctor reports a VM's shared memory: ok, then too small and wrong mode", async () => {
    await vms.create(spec("doc", { resolution: { width: 2560, height: 1440 } }));
    const config = testConfig({ stateDir: ctx.core.config.stateDir, libvirtUri: daemon.uri, shmDir: daemon.shmDir, desktopUser: "root" });
    const ok = await checkVmSharedMemory(config);
    expect(ok.status).toBe("ok");
    const file = join(daemon.shmDir, "looking-glass-doc");
    truncateSync(file, 32 * 1024 * 1024);
    chmodSync(file, 0o644);
    const bad = await checkVmSharedMemory(config);
    expect(bad.status).toBe("warn");
    expect(bad.detail).toContain("doc: ");
    expect(bad.detail).toContain("too small for 2560x1440 (needs 64 MiB)");
    expect(bad.detail).toContain("mode 0644, expected 0660");
    await vms.remove("doc");
    const down = await checkVmSharedMemory(testConfig({ libvirtUri: `qemu:///system?socket=${join(daemon.dir, "nope")}` }));
    expect(down.status).toBe("warn");
  });

  test("watch reports state changes by polling", async () => {
    await vms.create(spec("watched"));
    const seen: string[] = [];
    const ac = new AbortController();
    const watching = vms.watch((vm, prev) => vm.name === "watched" && seen.push(`${prev ?? "-"}>${vm.state}`), ac.signal, 100);
    const until = async (text: string) => {
      const deadline = Date.now() + 20_000;
      while (!seen.includes(text) && Date.now() < deadline) await Bun.sleep(50);
    };
    await until("->shut off");
    await vms.start("watched");
    // libvirt starts QEMU paused, then resumes it: "paused" may be seen on the way.
    const deadline = Date.now() + 20_000;
    while (!seen.some((s) => s.endsWith(">running")) && Date.now() < deadline) await Bun.sleep(50);
    await vms.stop("watched", { force: true });
    const deadline2 = Date.now() + 20_000;
    while (!(seen.at(-1) ?? "").endsWith(">shut off") && Date.now() < deadline2) await Bun.sleep(50);
    ac.abort();
    await watching;
    // Transient states (libvirt starts QEMU paused) may show up between; the order must hold.
    const states = seen.map((e) => e.split(">")[1]);
    expect(seen[0]).toBe("->shut off");
    const runningAt = states.indexOf("running");
    expect(runningAt).toBeGreaterThan(0);
    expect(states.slice(runningAt + 1)).toContain("shut off");
    expect(states.at(-1)).toBe("shut off");
    await vms.remove("watched");
  }, 60_000);

  test("CLI: vm create, list, show, delete on the same daemon", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const env = { NEURON_LIBVIRT_URI: daemon.uri, NEURON_LIBVIRT_TIMEOUT_MS: String(TEST_VIRSH_TIMEOUT_MS), NEURON_STATE_DIR: ctx.core.config.stateDir, NEURON_SHM_DIR: daemon.shmDir, NEURON_TARGET_ROOT: join(daemon.dir, "target") };
    const cli = async (...args: string[]) => {
      out.length = 0;
      err.length = 0;
      return run(args, { env, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) });
    };
    expect(await cli("vm", "create", "--template", "win11", "--name", "clivm", "--memory", "1", "--vcpus", "2", "--disk-size", "1", "--no-network", "--json")).toBe(0);
    const created = JSON.parse(out.join(""));
    expect(created.shm.sizeMiB).toBe(32);
    expect(existsSync(created.disk)).toBe(true);
    expect(await cli("vm", "list")).toBe(0);
    expect(out.join("")).toMatch(/^clivm\s+shut off$/m);
    expect(await cli("vm", "show", "clivm", "--json")).toBe(0);
    expect(JSON.parse(out.join(""))).toMatchObject({ name: "clivm", template: "win11", vcpus: 2, memoryMiB: 1024, state: "shut off" });
    expect(await cli("vm", "create", "--template", "win11", "--name", "clivm")).toBe(1);
    expect(err.join("")).toContain("already exists");
    expect(await cli("vm", "show", "a<b")).toBe(1);
    expect(err.join("")).toContain("invalid VM name");
    expect(await cli("vm", "delete", "clivm", "--delete-disk")).toBe(0);
    expect(existsSync(created.disk)).toBe(false);
    expect(await cli("vm", "show", "clivm")).toBe(1);
    expect(err.join("")).toContain("clivm");
  }, 60_000);

  test("a duplicate name is refused before anything is created", async () => {
    await vms.create(spec("dup"));
    const disk = join(ctx.core.config.stateDir, "vms", "dup.qcow2");
    await expectError(vms.create(spec("dup", { disk: { kind: "new", sizeGiB: 1 } })), "CONFLICT");
    expect(existsSync(disk)).toBe(false);
    await vms.remove("dup");
  });

  test("a VM that fails to start reports libvirt's own reason", async () => {
    const disk = join(ctx.core.config.stateDir, "gone.qcow2");
    expect((await execFile(["qemu-img", "create", "-q", "-f", "qcow2", disk, "1G"])).code).toBe(0);
    await vms.create(spec("broken", { disk: { kind: "existing", path: disk } }));
    rmSync(disk);
    const err = await expectError(vms.start("broken"), "VM_START_FAILED");
    expect(err.message).toContain("gone.qcow2");
    expect(err.message).toMatch(/No such file|Cannot access storage file/);
    expect(await deps.virsh.state("broken")).toBe("shut off");
    await vms.remove("broken");
  });

  test("a failure after define rolls back: no definition, no disk, a failed audit row", async () => {
    const bad = new VmService({ ...deps, settings: { ...deps.settings, shmDir: join(daemon.dir, "no-such-dir") } });
    await expectError(bad.create(spec("rollback", { disk: { kind: "new", sizeGiB: 1 } })), "SHM_PROVISION_FAILED");
    expect(await deps.virsh.exists("rollback")).toBe(false);
    expect(existsSync(join(ctx.core.config.stateDir, "vms", "rollback.qcow2"))).toBe(false);
    expect(deps.audit.forVm("rollback")[0]).toMatchObject({ action: "vm.define", status: "failed" });
    expect(existsSync(vmSideFiles(deps.settings, "rollback").clientIni)).toBe(false);
  });

  test("libvirt down: a clear error, nothing created", async () => {
    const down = new VmService({ ...deps, virsh: new Virsh({ bin: "virsh", uri: `qemu:///system?socket=${join(daemon.dir, "nope.sock")}`, timeoutMs: TEST_VIRSH_TIMEOUT_MS }) });
    await expectError(down.list(), "LIBVIRT_UNAVAILABLE");
    await expectError(down.create(spec("down", { disk: { kind: "new", sizeGiB: 1 } })), "LIBVIRT_UNAVAILABLE");
    expect(existsSync(join(ctx.core.config.stateDir, "vms", "down.qcow2"))).toBe(false);
    await expectError(down.show("x"), "LIBVIRT_UNAVAILABLE");
  });

  test("HTTP API: create, list, show, start, stop, delete; bad input 422 and nothing defined", async () => {
    const app = createApp({ ...ctx.core, vms });
    const call = async (method: string, path: string, body?: unknown) => {
      const init: RequestInit = { method };
      if (body !== undefined) {
        init.body = JSON.stringify(body);
        init.headers = { "content-type": "application/json" };
      }
      const res = await app.handle(asRoot(new Request(`http://localhost/api/v1/vms${path}`, init)));
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    const before = (await call("GET", "/")).body.vms;
    for (const bad of [spec("a<b>"), spec("../etc"), spec("ok", { memoryMiB: -1 }), spec("ok", { gpu: "0000:zz:00.0" }), spec("ok", { resolution: { width: 1, height: 1 } })]) {
      const r = await call("POST", "/", bad);
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe("VALIDATION_FAILED");
    }
    expect((await call("GET", "/")).body.vms).toEqual(before);
    expect((await call("GET", "/a%3Cb")).status).toBe(422);
    expect((await call("GET", "/missing")).body.error.code).toBe("NOT_FOUND");

    const created = await call("POST", "/", spec("api"));
    expect(created.status).toBe(201);
    expect(created.body.shm.sizeMiB).toBe(32);
    expect((await call("POST", "/", spec("api"))).status).toBe(409);
    expect((await call("GET", "/")).body.vms).toContainEqual({ name: "api", state: "shut off" });
    const started = await call("POST", "/api/start");
    expect(started.status).toBe(200);
    expect(started.body.state).toBe("running");
    expect((await call("GET", "/api")).body.agentSocket).toContain("org.neuronos.agent.0");
    expect((await call("DELETE", "/api")).status).toBe(409);
    const stopped = await call("POST", "/api/stop", { timeoutSeconds: 1 });
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe("shut off");
    expect((await call("DELETE", "/api")).status).toBe(204);
    expect((await call("GET", "/api")).status).toBe(404);
  }, 60_000);
});
