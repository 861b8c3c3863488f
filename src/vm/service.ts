/**
 * VM lifecycle: specs become libvirt definitions (with their disk and shared
 * memory), and libvirt's domains are started, stopped, inspected and removed.
 * No transport: the API routes and the `vm` CLI commands call this.
 *
 * create() is all-or-nothing: a failure at any step removes what earlier steps
 * made (the new disk image, the definition), and the audit log records it.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import type { VmAuditRepo } from "../db/repos/vm-audit.ts";
import { AppError, conflict, invalid } from "../errors.ts";
import { domainFacts } from "./details.ts";
import { createQcow2 } from "./disk.ts";
import {
  VmName,
  VmSpecInput,
  VmStopBody,
  resolveSpec,
  type VmCreateResult,
  type VmDetails,
  type VmSpec,
  type VmState,
  type VmStopResult,
  type VmSummary,
} from "./model.ts";
import type { PassthroughResolver } from "./passthrough.ts";
import { ivshmemSizeMiB, lookingGlassClientIni, provisionShm, shmPath, tmpfilesLine, type ShmOwner } from "./shm.ts";
import { LibvirtError, type Virsh } from "./virsh.ts";
import { ensureQmpDir, vmQmpSocket } from "./qmp-socket.ts";
import { ensureGraphicsDir, graphicsDirOwner, graphicsListens, removeGraphicsSockets, secureGraphicsSockets, vmGraphicsSocket, type GraphicsDirOwner } from "./graphics-socket.ts";
import { buildDomainXml, vmFrameSocket, type BuildOptions } from "./xml.ts";
import { ensureVmSink, vmAudioSink } from "./audio.ts";
import { hostCpu } from "./sizing.ts";

export interface VmSettings {
  stateDir: string;
  shmDir: string;
  qemuImg: string;
  /** Root holding sys/ for GPU function expansion (hardware detection). */
  root: string;
  /** Root under which host configuration is written (<targetRoot>/etc/tmpfiles.d). */
  targetRoot: string;
  /** Directory of the VMs' QMP monitor sockets (input); absent: definitions get none. */
  qmpDir?: string;
  /** libvirt's QEMU state directory: its owner is QEMU's user (owner of qmpDir). */
  libvirtQemuDir?: string;
  /** Directory of the VMs' SPICE/VNC unix sockets; absent: displays listen nowhere. */
  spiceDir?: string;
  /** Where the NVF1 frame listeners wait (<frameSocketDir>/<vm>.nvf); a spec's frameChannel connects there. */
  frameSocketDir?: string;
  /** Group that may reach the display sockets (the desktop user's); default "neuron". */
  adminGroup?: string;
  /** /etc/group-style file the admin group is looked up in (tests). */
  groupFile?: string;
  /** The desktop user's PulseAudio socket: each VM's sound goes to its own sink there (audio.ts). */
  pulseServer?: string;
  /** pactl binary (creates the VM's sink on the desktop user's server). */
  pactl?: string;
}

export interface VmServiceDeps {
  virsh: Virsh;
  audit: VmAuditRepo;
  resolver: PassthroughResolver;
  settings: VmSettings;
  /** Owner of the IVSHMEM file; null leaves its creation to QEMU (doctor then reports the owner). */
  shmOwner: () => (ShmOwner & { user: string }) | null;
  cpuVendor: () => BuildOptions["cpuVendor"];
  domainType?: BuildOptions["domainType"];
  /** Where each change this service makes is published as vm.state ({ name, state, action }). */
  events?: { publish(type: string, data: unknown): unknown };
}

/** Host files that belong to one VM besides its definition and disk. */
export function vmSideFiles(settings: Pick<VmSettings, "stateDir" | "targetRoot">, name: string) {
  return {
    tmpfiles: join(settings.targetRoot, "etc", "tmpfiles.d", `neuron-vm-${name}.conf`),
    clientIni: join(settings.stateDir, "vms", `${name}.looking-glass.ini`),
  };
}

function writeFileAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}

export interface VmPlan {
  spec: VmSpec;
  xml: string;
  hostdevs: string[];
  diskPath: string | null;
  shm: { path: string; sizeMiB: number };
  /** The SPICE or VNC unix socket the display listens on; null: no display (or no spiceDir). */
  graphicsSocket: string | null;
  /** What may go wrong with this definition (an install ISO without drivers, ...). */
  warnings: string[];
}

const OFF_STATES: VmState[] = ["shut off", "crashed"];

export function formatZodError(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join(".") : "(spec)"}: ${i.message}`).join("; ");
}

export function parseSpec(input: unknown): VmSpec {
  const r = VmSpecInput.safeParse(input);
  if (!r.success) throw invalid(`invalid VM spec: ${formatZodError(r.error)}`, r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })));
  return resolveSpec(r.data);
}

export function checkName(name: string): string {
  const r = VmName.safeParse(name);
  if (!r.success) throw invalid(`invalid VM name ${JSON.stringify(name.slice(0, 80))}: ${formatZodError(r.error)}`);
  return r.data;
}

export type PlanDeps = Pick<VmServiceDeps, "resolver" | "cpuVendor" | "domainType"> & {
  settings: Pick<VmSettings, "stateDir" | "shmDir" | "root" | "qmpDir" | "spiceDir" | "pulseServer" | "frameSocketDir">;
};

/** Spec → XML, disk path and shared memory, without touching libvirt or the disk. */
export function planVm(input: unknown, deps: PlanDeps, root?: string, uuid?: string): VmPlan {
  const parsed = parseSpec(input);
  const hostRoot = root ?? deps.settings.root;
  // no topology given: threads per core as the host has them (SMT), so the guest schedules siblings as siblings
  const given = typeof input === "object" && input !== null && (input as { topology?: unknown }).topology !== undefined;
  const threads = hostCpu(hostRoot).threadsPerCore;
  const spec: VmSpec =
    !given && threads > 1 && parsed.vcpus % threads === 0 ? { ...parsed, topology: { sockets: 1, cores: parsed.vcpus / threads, threads } } : parsed;
  const warnings: string[] = [];
  if (spec.osIso && !spec.virtioIso && spec.template !== "linux" && spec.disk.kind !== "none")
    warnings.push("an install ISO without a virtio drivers ISO (--virtio-iso): Windows setup will not see the virtio disk; give virtio-win.iso");
  const gpuFunctions = spec.gpu ? deps.resolver.functionsOf(spec.gpu, root ?? deps.settings.root) : [];
  const hostdevs = [...new Set([...gpuFunctions, ...spec.passthrough])];
  const diskPath =
    spec.disk.kind === "new" ? (spec.disk.path ?? join(deps.settings.stateDir, "vms", `${spec.name}.qcow2`)) : spec.disk.kind === "existing" ? spec.disk.path : null;
  const qmpSocket = deps.settings.qmpDir ? vmQmpSocket(deps.settings.qmpDir, spec.name) : undefined;
  const graphicsSocket = spec.graphics !== "none" && deps.settings.spiceDir ? vmGraphicsSocket(deps.settings.spiceDir, spec.name, spec.graphics) : undefined;
  const audio = deps.settings.pulseServer ? { server: deps.settings.pulseServer, sink: vmAudioSink(spec.name) } : undefined;
  const frameSocket = spec.frameChannel && deps.settings.frameSocketDir ? vmFrameSocket(deps.settings.frameSocketDir, spec.name) : undefined;
  const xml = buildDomainXml(spec, { cpuVendor: deps.cpuVendor(), hostdevs, diskPath, domainType: deps.domainType, qmpSocket, graphicsSocket, uuid, audio, frameSocket });
  return {
    spec,
    xml,
    hostdevs,
    diskPath,
    shm: { path: shmPath(deps.settings.shmDir, spec.name), sizeMiB: ivshmemSizeMiB(spec.resolution, spec.hdr) },
    graphicsSocket: graphicsSocket ?? null,
    warnings,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class VmService {
  constructor(private readonly deps: VmServiceDeps) {}

  private published(name: string, state: VmState | "undefined", action: string): void {
    this.deps.events?.publish("vm.state", { name, state, action });
  }

  /** Spec → XML, without touching libvirt (the GPU is expanded through hardware detection). */
  plan(input: unknown, opts: { root?: string } = {}): VmPlan {
    return planVm(input, this.deps, opts.root);
  }

  async create(input: unknown, actor = "system"): Promise<VmCreateResult> {
    const plan = this.plan(input);
    const { spec } = plan;
    if (await this.deps.virsh.exists(spec.name)) throw conflict(`a VM named ${JSON.stringify(spec.name)} already exists`);
    if (spec.disk.kind === "existing" && !existsSync(spec.disk.path)) throw invalid(`disk image ${spec.disk.path} does not exist`);
    for (const iso of [spec.osIso, spec.virtioIso]) if (iso && !existsSync(iso)) throw invalid(`install medium ${iso} does not exist`);
    let createdDisk: string | null = null;
    let defined = false;
    try {
      if (spec.disk.kind === "new" && plan.diskPath) {
        await createQcow2(this.deps.settings.qemuImg, plan.diskPath, spec.disk.sizeGiB);
        createdDisk = plan.diskPath;
      }
      await this.deps.virsh.define(plan.xml);
      defined = true;
      const owner = this.deps.shmOwner();
      const side = vmSideFiles(this.deps.settings, spec.name);
      if (owner) {
        provisionShm(plan.shm.path, plan.shm.sizeMiB, owner);
        // Recreated at every boot by systemd-tmpfiles (owner user, group kvm, 0660).
        writeFileAtomic(side.tmpfiles, tmpfilesLine(plan.shm.path, owner.user));
      }
      writeFileAtomic(side.clientIni, lookingGlassClientIni(spec.name, plan.shm.path, spec.graphics === "spice" ? plan.graphicsSocket : null));
      this.deps.audit.record({ actor, action: "vm.define", target: spec.name, status: "applied", details: { xml: plan.xml, disk: plan.diskPath, hostdevs: plan.hostdevs, shm: plan.shm } });
      this.published(spec.name, "shut off", "defined");
      return { name: spec.name, xml: plan.xml, disk: plan.diskPath, shm: plan.shm, warnings: plan.warnings };
    } catch (err) {
      if (defined) await this.deps.virsh.undefine(spec.name).catch(() => this.deps.virsh.undefine(spec.name, false).catch(() => undefined));
      if (createdDisk) rmSync(createdDisk, { force: true });
      for (const f of Object.values(vmSideFiles(this.deps.settings, spec.name))) rmSync(f, { force: true });
      this.deps.audit.record({ actor, action: "vm.define", target: spec.name, status: "failed", details: { error: (err as Error).message, xml: plan.xml } });
      throw err;
    }
  }

  /**
   * Writes a new definition for an existing, shut-off VM from `input` (same name, same UUID, so
   * libvirt keeps its NVRAM and TPM state): e.g. install media attached. The disk is not touched:
   * a "new" disk in the spec is taken as the existing image at its path.
   */
  async redefine(input: unknown, actor = "system"): Promise<VmCreateResult> {
    const spec = parseSpec(input);
    const state = await this.deps.virsh.state(spec.name);
    if (!OFF_STATES.includes(state)) throw conflict(`VM ${spec.name} is ${state}: stop it before changing its definition`);
    const current = await this.deps.virsh.dumpxml(spec.name, true);
    const uuid = domainFacts(current, this.deps.settings.shmDir).uuid ?? undefined;
    for (const iso of [spec.osIso, spec.virtioIso, spec.unattendIso]) if (iso && !existsSync(iso)) throw invalid(`install medium ${iso} does not exist`);
    const disk =
      spec.disk.kind === "new" ? { kind: "existing" as const, path: spec.disk.path ?? join(this.deps.settings.stateDir, "vms", `${spec.name}.qcow2`), format: "qcow2" as const } : spec.disk;
    const plan = planVm({ ...input as object, disk }, this.deps, undefined, uuid);
    try {
      await this.deps.virsh.define(plan.xml);
    } catch (err) {
      this.deps.audit.record({ actor, action: "vm.redefine", target: spec.name, status: "failed", details: { error: (err as Error).message, xml: plan.xml } });
      throw err;
    }
    this.deps.audit.record({ actor, action: "vm.redefine", target: spec.name, status: "applied", details: { xml: plan.xml, previous: current } });
    return { name: spec.name, xml: plan.xml, disk: plan.diskPath, shm: plan.shm, warnings: plan.warnings };
  }

  async exists(name: string): Promise<boolean> {
    return this.deps.virsh.exists(checkName(name));
  }

  async list(): Promise<VmSummary[]> {
    const states = await this.deps.virsh.states();
    return [...states.entries()].map(([name, state]) => ({ name, state })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async show(name: string): Promise<VmDetails> {
    checkName(name);
    const xml = await this.deps.virsh.dumpxml(name);
    const state = await this.deps.virsh.state(name);
    const id = state === "running" || state === "paused" ? await this.deps.virsh.id(name) : null;
    return { name, state, id, ...domainFacts(xml, this.deps.settings.shmDir) };
  }

  async start(name: string, actor = "system"): Promise<VmDetails> {
    checkName(name);
    const state = await this.deps.virsh.state(name);
    if (state === "running") throw conflict(`VM ${name} is already running`);
    const { qmpDir, libvirtQemuDir, spiceDir } = this.deps.settings;
    // QEMU creates the monitor socket there: the directory must exist, owned by QEMU's user
    if (qmpDir) ensureQmpDir(qmpDir, libvirtQemuDir ?? "/var/lib/libvirt/qemu");
    // a frames channel connects there as QEMU's user: the directory is QEMU's (the listeners' sockets take its owner)
    if (this.deps.settings.frameSocketDir) ensureQmpDir(this.deps.settings.frameSocketDir, libvirtQemuDir ?? "/var/lib/libvirt/qemu", "frameSocketDir");
    // and the display sockets: QEMU's user, the admin group, 2750
    const displayOwner = spiceDir ? ensureGraphicsDir(spiceDir, this.graphicsOwner()) : null;
    // the VM's own sink (its sound, and only its sound, for its streams); no sound is no reason not to start
    let audio: string | null = null;
    if (this.deps.settings.pulseServer)
      audio = await ensureVmSink(this.deps.settings.pactl ?? "pactl", this.deps.settings.pulseServer, name)
        .then((created) => (created ? `created sink ${vmAudioSink(name)}` : null))
        .catch((err: unknown) => `no sink of its own: ${(err as Error).message}`);
    try {
      await this.deps.virsh.start(name);
    } catch (err) {
      if (err instanceof LibvirtError && err.errorCode === "LIBVIRT_ERROR")
        throw new AppError("VM_START_FAILED", `VM ${name} failed to start: ${err.libvirtMessage}`, { status: 409, cause: err });
      throw err;
    }
    const display = spiceDir && displayOwner ? await this.secureDisplay(name, spiceDir, displayOwner) : [];
    this.deps.audit.record({ actor, action: "vm.start", target: name, status: "applied", details: { ...(display.length ? { display } : {}), ...(audio ? { audio } : {}) } });
    const shown = await this.show(name);
    this.published(name, shown.state, "started");
    return shown;
  }

  /** Owner, group and modes of the display socket directory (see graphics-socket.ts). */
  graphicsOwner(): GraphicsDirOwner {
    const s = this.deps.settings;
    return graphicsDirOwner(s.libvirtQemuDir ?? "/var/lib/libvirt/qemu", s.adminGroup ?? "neuron", s.groupFile);
  }

  /**
   * QEMU creates its display sockets with libvirt's umask (002) and its own group: once they
   * exist (before `virsh start` returns; waited for 2 s at most), they get the directory's group
   * and 0660 — only the sockets in spiceDir, never a path a hand-written definition names.
   */
  private async secureDisplay(name: string, spiceDir: string, owner: GraphicsDirOwner) {
    const xml = await this.deps.virsh.dumpxml(name).catch(() => "<domain/>");
    const ours = graphicsListens(xml)
      .flatMap((g) => g.sockets)
      .filter((p) => dirname(p) === spiceDir);
    const deadline = Date.now() + 2000;
    while (ours.some((p) => !existsSync(p)) && Date.now() < deadline) await sleep(50);
    return secureGraphicsSockets(ours, owner).map((s) => ({ ...s, mode: `0${s.mode.toString(8)}` }));
  }

  /** Waits until the VM is in one of `states`; returns the state seen last. */
  async waitForState(name: string, states: VmState[], timeoutMs: number, intervalMs = 250): Promise<VmState> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.deps.virsh.state(name);
      if (states.includes(s) || Date.now() >= deadline) return s;
      await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
    }
  }

  /** Graceful shutdown: an ACPI power-button press, then destroy after the timeout. */
  async stop(name: string, options: unknown = {}, actor = "system"): Promise<VmStopResult> {
    checkName(name);
    const r = VmStopBody.safeParse(options ?? {});
    if (!r.success) throw invalid(`invalid stop options: ${formatZodError(r.error)}`);
    const { timeoutSeconds, force } = r.data;
    const state = await this.deps.virsh.state(name);
    if (OFF_STATES.includes(state)) return { name, state, method: "already-off" };
    let method: VmStopResult["method"] = "destroy";
    if (!force) {
      await this.deps.virsh.shutdownAcpi(name).catch((err: unknown) => {
        if (!(err instanceof LibvirtError) || err.errorCode !== "LIBVIRT_ERROR") throw err;
      });
      const after = await this.waitForState(name, OFF_STATES, timeoutSeconds * 1000);
      if (OFF_STATES.includes(after)) method = "acpi";
    }
    if (method === "destroy") {
      await this.deps.virsh.destroy(name).catch(async (err: unknown) => {
        if (OFF_STATES.includes(await this.deps.virsh.state(name))) return;
        throw err;
      });
    }
    const final = await this.deps.virsh.state(name);
    // QEMU does not unlink its SPICE socket when it exits
    if (this.deps.settings.spiceDir && OFF_STATES.includes(final)) removeGraphicsSockets(this.deps.settings.spiceDir, name);
    this.deps.audit.record({ actor, action: "vm.stop", target: name, status: "applied", details: { method } });
    this.published(name, final, method === "acpi" ? "shut down" : "forced off");
    return { name, state: final, method };
  }

  /** Removes the definition with its NVRAM and TPM state; the disk image only when asked. */
  async remove(name: string, opts: { deleteDisk?: boolean } = {}, actor = "system"): Promise<void> {
    checkName(name);
    const state = await this.deps.virsh.state(name);
    if (!OFF_STATES.includes(state)) throw conflict(`VM ${name} is ${state}: stop it before deleting it`);
    const xml = await this.deps.virsh.dumpxml(name, true);
    const facts = domainFacts(xml, this.deps.settings.shmDir);
    try {
      await this.deps.virsh.undefine(name);
    } catch (err) {
      this.deps.audit.record({ actor, action: "vm.undefine", target: name, status: "failed", details: { error: (err as Error).message } });
      throw err;
    }
    const ownDisks = facts.disks.filter((d) => d.startsWith(join(this.deps.settings.stateDir, "vms") + "/"));
    if (opts.deleteDisk) for (const d of ownDisks) rmSync(d, { force: true });
    for (const f of Object.values(vmSideFiles(this.deps.settings, name))) rmSync(f, { force: true });
    if (this.deps.settings.spiceDir) removeGraphicsSockets(this.deps.settings.spiceDir, name);
    // The previous definition stays in the audit log: redefining it is the rollback.
    this.deps.audit.record({ actor, action: "vm.undefine", target: name, status: "applied", details: { xml, deletedDisks: opts.deleteDisk ? ownDisks : [] } });
    this.published(name, "undefined", "deleted");
  }

  /** Polls the domains' states and reports every change until `signal` aborts. */
  async watch(onChange: (vm: VmSummary, previous: VmState | null) => void, signal: AbortSignal, intervalMs = 1000): Promise<void> {
    const seen = new Map<string, VmState>();
    while (!signal.aborted) {
      const states = await this.deps.virsh.states();
      for (const [name, state] of states) {
        const prev = seen.get(name) ?? null;
        if (prev !== state) onChange({ name, state }, prev);
        seen.set(name, state);
      }
      for (const name of [...seen.keys()]) if (!states.has(name)) seen.delete(name);
      await sleep(intervalMs);
    }
  }
}
