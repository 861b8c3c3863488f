/**
 * The whole setup flow on a fixture machine and target root, with a private libvirtd: detect →
 * GPU → VFIO plan/apply (real files) → reboot (a fresh service on the machine as it boots with
 * vfio-pci) → verify → VM (defined and started in libvirt, TCG) → install media → first boot →
 * guest agent (a real agent on the VM's socket) → Looking Glass (a real KVMFR producer) → app →
 * done. A failure is injected at every step: it leaves that step failed with its advice, the
 * earlier steps done and the later ones pending, and the next advance (on a fresh service over
 * the same database) resumes from it.
 *
 * This sandbox refuses Hyper-V, SMM and host devices, so the VM that boots is the linux template
 * without hostdevs (TCG); answer-file.test.ts and media.test.ts cover the win11 definition with
 * the GPU and the install media in libvirt.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveNativePath } from "../../ffi/native.ts";
import { AppsService } from "../../src/apps/service.ts";
import { CaptureService } from "../../src/capture/service.ts";
import { openDatabase, type OpenedDb } from "../../src/db/client.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { auditRepo } from "../../src/db/repos/audit.ts";
import { setupRepo } from "../../src/db/repos/setup.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import { AppError } from "../../src/errors.ts";
import { EventBus, type ApplianceEvent } from "../../src/events/bus.ts";
import { ensureAgentCertificates } from "../../src/guest/certs.ts";
import { GuestService } from "../../src/guest/service.ts";
import { GuestAgentSettingsSchema } from "../../src/guest/settings.ts";
import { HardwareService } from "../../src/hardware/service.ts";
import { silentLogger } from "../../src/log.ts";
import { SETUP_STEPS, type SetupStatus, type SetupStepEvent, type StepId } from "../../src/setup/model.ts";
import { SetupService } from "../../src/setup/service.ts";
import { VfioService } from "../../src/vfio/service.ts";
import { VmService } from "../../src/vm/service.ts";
import { shmName } from "../../src/vm/shm.ts";
import { DEFAULT_HOST_SHARE } from "../../src/vm/sizing.ts";
import { spawnProducer, type ProducerProcess } from "../capture/helpers.ts";
import { serveAgent, type ServedAgent } from "../guest/agent-env.ts";
import { writeTarget } from "../fixtures/targets.ts";
import { tempDir } from "../helpers/env.ts";
import { snapshot } from "../vfio/helpers.ts";
import { libvirtdUnavailable, startLibvirtd, type PrivateLibvirtd } from "../vm/libvirtd.ts";
import { machine } from "./helpers.ts";

setDefaultTimeout(60_000);

let nativePath: string | null = null;
try {
  nativePath = resolveNativePath({});
} catch {
  nativePath = null;
}
const SKIP = libvirtdUnavailable() ?? (Bun.which("xorriso") ? null : "xorriso is not installed") ?? (nativePath ? null : "libneuron.so is not built (make -C native)");
if (SKIP) console.warn(`setup flow tests skipped: ${SKIP}`);

let daemon: PrivateLibvirtd;
const dir = tempDir("neuron-setup-flow-");
const VM = "flow-vm";

beforeAll(async () => {
  if (SKIP) return;
  daemon = await startLibvirtd();
}, 60_000);

afterAll(async () => {
  if (!SKIP) {
    const virsh = daemon.virsh();
    for (const [name, state] of await virsh.states().catch(() => new Map())) if (state === "running") await virsh.destroy(name).catch(() => undefined);
    await daemon.stop();
  }
  dir.cleanup();
}, 60_000);

interface Rig {
  setup: SetupService;
  events: ApplianceEvent[];
  db: OpenedDb;
  close(): void;
}

/** A fresh service over the state dir (what a restart or a reboot builds). */
function rig(root: string, opts: { agentSocket: string; shmDir: string; inject?: (id: StepId) => void }): Rig {
  const stateDir = join(dir.path, "state");
  const target = join(dir.path, "target");
  const db = openDatabase(join(stateDir, "neuron.db"));
  const hardware = new HardwareService({ root });
  const bin = { mkinitcpio: "mkinitcpio", dracut: "dracut", updateInitramfs: "update-initramfs", grubMkconfig: "grub-mkconfig", chroot: "true" };
  const vfio = new VfioService({ targetRoot: target, stateDir, bin }, hardware, auditRepo(db.db));
  const vms = new VmService({
    virsh: daemon.virsh(),
    audit: vmAuditRepo(db.db),
    // the GPU goes into the definition's metadata; its functions would be hostdevs, which this sandbox cannot start
    resolver: { functionsOf: () => [] },
    settings: { stateDir, shmDir: daemon.shmDir, qemuImg: "qemu-img", root, targetRoot: join(dir.path, "vm-target") },
    shmOwner: () => null,
    cpuVendor: () => "other",
    domainType: "qemu",
  });
  const guest = new GuestService({
    stateDir,
    openssl: "openssl",
    settings: GuestAgentSettingsSchema.parse({ connectWaitMs: 2000 }),
    resolve: async () => ({ agent: opts.agentSocket, qga: null }),
    log: silentLogger,
  });
  const capture = new CaptureService(opts.shmDir, () => nativePath!);
  const events = new EventBus();
  const seen: ApplianceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const setup = new SetupService({
    repo: setupRepo(db.db),
    events,
    log: silentLogger,
    settings: { root, stateDir, shmDir: opts.shmDir, share: DEFAULT_HOST_SHARE, guestWaitMs: 3000, vmDefaults: { network: { kind: "none" }, graphics: "none" } },
    hardware,
    vfio,
    vms,
    guest,
    capture,
    apps: new AppsService(appsRepo(db.db)),
    answerMedia: null,
    beforeStep: opts.inject,
  });
  return {
    setup,
    events: seen,
    db,
    close() {
      guest.close();
      capture.close();
      db.close();
    },
  };
}

const stateOf = (st: SetupStatus) => Object.fromEntries(st.steps.map((s) => [s.id, s.state]));

describe.skipIf(SKIP !== null)("setup flow on a fixture machine with a private libvirtd", () => {
  test("a failure injected at every step leaves a clear state; each resumes; a reboot is a fresh service on the booted machine", async () => {
    const pre = machine("desktop-intel-nvidia", join(dir.path, "pre"), { bootId: "11111111-1111-1111-1111-111111111111" });
    const post = machine("desktop-intel-nvidia-vfio", join(dir.path, "post"), { bootId: "22222222-2222-2222-2222-222222222222" });
    const target = join(dir.path, "target");
    writeTarget(target, "arch-grub-mkinitcpio");
    const targetBefore = snapshot(target);
    const shmDir = join(dir.path, "shm");
    mkdirSync(shmDir, { recursive: true });
    const agentSocket = join(dir.path, "agent.sock");
    const iso = join(dir.path, "installer.iso");
    mkdirSync(join(dir.path, "iso-src"), { recursive: true });
    writeFileSync(join(dir.path, "iso-src", "README"), "installer\n");
    execFileSync("xorriso", ["-as", "mkisofs", "-quiet", "-V", "INSTALLER", "-o", iso, join(dir.path, "iso-src")], { stdio: "pipe" });

    const failedOnce = new Set<StepId>();
    const inject = (id: StepId) => {
      if (failedOnce.has(id)) return;
      failedOnce.add(id);
      throw new AppError("INJECTED", `injected failure in ${id}`, { status: 500 });
    };
    let served: ServedAgent | null = null;
    let producer: ProducerProcess | null = null;
    let root = pre;
    let r = rig(root, { agentSocket, shmDir, inject });
    r.setup.setOptions({ vmName: VM, template: "linux", windowsIso: iso, memoryMiB: 1024, diskGiB: 32 });
    try {
      let guard = 0;
      for (;;) {
        if (++guard > 60) throw new Error("the flow did not finish");
        const st = await r.setup.advance({ confirm: true });
        if (st.state === "done") break;
        const cur = st.steps.find((s) => s.id === st.current)!;
        if (cur.state === "failed") {
          // a clear state: this step failed with its reason and advice, earlier ones done, later ones pending
          expect(cur.error?.code).toBe("INJECTED");
          expect(cur.advice).toBeTruthy();
          const i = SETUP_STEPS.indexOf(cur.id);
          for (const s of st.steps.slice(0, i)) expect(["done", "skipped"]).toContain(s.state);
          for (const s of st.steps.slice(i + 1)) expect(s.state).toBe("pending");
          expect(r.events.some((e) => e.type === "setup.step" && (e.data as SetupStepEvent).step.id === cur.id && (e.data as SetupStepEvent).step.state === "failed")).toBe(true);
        } else if (cur.state === "waiting") {
          if (cur.id === "reboot") {
            expect(cur.waitingFor).toBe("reboot");
            // the files the plan showed are written; the GPU binds at the next boot
            expect(readFileSync(join(target, "etc/modprobe.d/vfio.conf"), "utf8")).toContain("options vfio-pci ids=10de:2484,10de:228b");
            expect(readFileSync(join(target, "etc/default/grub"), "utf8")).toContain("vfio-pci.ids=10de:2484,10de:228b");
            root = post;
          } else if (cur.id === "agent") {
            expect(cur.waitingFor).toBe("guest");
            const certs = await ensureAgentCertificates({ stateDir: join(dir.path, "state"), openssl: "openssl" }, VM);
            mkdirSync(join(dir.path, "agent-files"), { recursive: true });
            served = await serveAgent({ socketPath: agentSocket, dir: join(dir.path, "agent-files"), tls: certs.guest });
          } else if (cur.id === "looking-glass") {
            expect(cur.waitingFor).toBe("guest");
            producer = await spawnProducer(join(shmDir, shmName(VM)), { width: 640, height: 480, fps: 30 });
          } else throw new Error(`unexpected wait at ${cur.id}: ${cur.detail}`);
        } else throw new Error(`unexpected state ${cur.state} at ${cur.id}`);
        // every resume is a fresh service over the same database (a restart, or the reboot)
        r.close();
        r = rig(root, { agentSocket, shmDir, inject });
      }
      expect(failedOnce.size).toBe(SETUP_STEPS.length);
      const st = r.setup.status();
      expect(Object.values(stateOf(st)).every((s) => s === "done")).toBe(true);
      const byId = Object.fromEntries(st.steps.map((s) => [s.id, s]));
      expect(byId.gpu!.result!.gpu).toBe("0000:01:00.0");
      expect(byId.reboot!.detail).toContain("rebooted");
      expect(byId.vm!.result!.spec).toMatchObject({ name: VM, vcpus: 12, topology: { sockets: 1, cores: 6, threads: 2 }, memoryMiB: 1024, resolution: { width: 2560, height: 1440 } });
      expect(byId["looking-glass"]!.result!.frame).toMatchObject({ width: 640, height: 480 });
      // each step ran twice: the injected failure, then the resume
      for (const s of st.steps) expect(s.attempts).toBeGreaterThanOrEqual(2);
      expect(new AppsService(appsRepo(r.db.db)).list().find((a) => a.vmName === VM)).toMatchObject({ kind: "vm" });
      expect((await daemon.virsh().state(VM))).toBe("running");

      // idempotent: advancing a finished flow changes nothing; retrying a done step redoes nothing
      const again = await r.setup.advance({ confirm: true });
      expect(stateOf(again)).toEqual(stateOf(st));
      const retried = await r.setup.retry("app");
      expect(retried.state).toBe("done");
      expect(new AppsService(appsRepo(r.db.db)).list().filter((a) => a.vmName === VM)).toHaveLength(1);
      expect(snapshot(target)).not.toEqual(targetBefore);
    } finally {
      r.close();
      await (served as ServedAgent | null)?.close();
      await (producer as ProducerProcess | null)?.stop();
      await daemon.virsh().destroy(VM).catch(() => undefined);
    }
  }, 180_000);
});

describe("setup state without a machine", () => {
  test("fresh database: every step pending, in order; bad input changes nothing", async () => {
    const d = tempDir();
    try {
      const db = openDatabase(join(d.path, "neuron.db"));
      const setup = new SetupService({
        repo: setupRepo(db.db),
        events: new EventBus(),
        log: silentLogger,
        settings: { root: d.path, stateDir: d.path, shmDir: d.path, share: DEFAULT_HOST_SHARE, guestWaitMs: 0 },
        hardware: new HardwareService({ root: d.path }),
        vfio: null as never,
        vms: null as never,
        guest: null,
        capture: null,
        apps: new AppsService(appsRepo(db.db)),
        answerMedia: null,
      });
      const st = setup.status();
      expect(st.state).toBe("not-started");
      expect(st.current).toBe("detect");
      expect(st.steps.map((s) => s.id)).toEqual([...SETUP_STEPS]);
      expect(st.steps.every((s) => s.state === "pending")).toBe(true);
      expect(() => setup.setOptions({ gpu: "nope" })).toThrow(/PCI address/);
      expect(() => setup.setOptions({ windowsIso: "relative.iso" })).toThrow(/absolute/);
      expect(() => setup.setOptions({ user: "Administrator" })).toThrow(/reserves/);
      expect(() => setup.setOptions({ bogus: 1 } as never)).toThrow();
      expect(setup.status().options).toEqual({ passwordSet: false });
      setup.setOptions({ password: "s3cret", vmName: "w" });
      expect(setup.status().options).toEqual({ vmName: "w", passwordSet: true });
      expect(JSON.stringify(setup.status())).not.toContain("s3cret");
      // the machine root holds no sys/: detect fails with advice, and nothing after it ran
      const after = await setup.advance({});
      expect(after.state).toBe("failed");
      expect(after.steps[0]).toMatchObject({ id: "detect", state: "failed", error: { code: "ROOT_INVALID" } });
      expect(after.steps[0]!.advice).toContain("--root");
      expect(after.steps.slice(1).every((s) => s.state === "pending")).toBe(true);
      expect(() => setup.retry("gpu")).toThrow(/Detect hardware/);
      expect(setup.reset({}).state).toBe("not-started");

      // what the service continues by itself: a flow under way or waiting for the guest; never a confirmation, a failure or a fresh one
      const repo = setupRepo(db.db);
      expect(setup.canResume()).toBe(false);
      for (const id of SETUP_STEPS.slice(0, SETUP_STEPS.indexOf("vfio-apply"))) repo.putStep({ id, state: "done" });
      repo.putStep({ id: "vfio-apply", state: "waiting", waitingFor: "confirm" });
      expect(setup.canResume()).toBe(false);
      for (const id of SETUP_STEPS.slice(0, SETUP_STEPS.indexOf("agent"))) repo.putStep({ id, state: "done" });
      expect(setup.status().state).toBe("in-progress");
      expect(setup.canResume()).toBe(true);
      repo.putStep({ id: "agent", state: "waiting", waitingFor: "guest" });
      expect(setup.canResume()).toBe(true);
      repo.putStep({ id: "agent", state: "failed", errorCode: "X" });
      expect(setup.canResume()).toBe(false);
      db.close();
    } finally {
      d.cleanup();
    }
  });
});
