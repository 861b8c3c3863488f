/** `vm xml|create|list|show|start|stop|delete`: VM definitions and lifecycle through libvirt. */
import { existsSync, readFileSync } from "node:fs";
import { createCore } from "../core.ts";
import { AppError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import { ResolutionText, type VmDetails, type VmSummary } from "../vm/model.ts";
import { lookingGlassClientArgv, ProcessSupervisor } from "../vm/lg-client.ts";
import { checkName, formatZodError, planVm, vmSideFiles } from "../vm/service.ts";
import { HardwareService, hardwareSettings } from "../hardware/service.ts";
import { hardwarePassthrough } from "../vm/hardware-passthrough.ts";
import { planDeps } from "../vm/wire.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type CliContext, type Command, type ParsedArgs } from "./command.ts";

const SPEC_FILE_LIMIT = 64 * 1024;

const str = (args: ParsedArgs, k: string): string | undefined => {
  const v = args.values[k];
  return typeof v === "string" ? v : undefined;
};
/** A flag that must be a whole number; anything else reaches zod as a string and is named there. */
const int = (v: string | undefined): number | string | undefined => (v === undefined ? undefined : /^-?\d{1,12}$/.test(v.trim()) ? Number(v.trim()) : v);

/** The spec from --spec FILE (JSON), then the individual flags on top. */
export function specFromFlags(args: ParsedArgs): Record<string, unknown> {
  let spec: Record<string, unknown> = {};
  const file = str(args, "spec");
  if (file) {
    const text = readFileSync(file, "utf8");
    if (text.length > SPEC_FILE_LIMIT) throw new UsageError(`--spec ${file}: larger than ${SPEC_FILE_LIMIT} bytes`);
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not a JSON object");
      spec = parsed as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`--spec ${file}: ${(err as Error).message}`);
    }
  }
  const set = (k: string, v: unknown) => {
    if (v !== undefined) spec[k] = v;
  };
  set("name", str(args, "name"));
  set("template", str(args, "template"));
  set("gpu", str(args, "gpu"));
  set("vcpus", int(str(args, "vcpus")));
  const mem = int(str(args, "memory"));
  set("memoryMiB", typeof mem === "number" ? mem * 1024 : mem);
  const res = str(args, "resolution");
  if (res !== undefined) {
    const r = ResolutionText.safeParse(res);
    if (!r.success) throw new AppError("INVALID_INPUT", `--resolution ${JSON.stringify(res.slice(0, 32))}: ${formatZodError(r.error)}`, { status: 422 });
    spec.resolution = r.data;
  }
  if (args.values.hdr) spec.hdr = true;
  if (args.values.hugepages) spec.hugepages = true;
  const diskSize = int(str(args, "disk-size"));
  if (diskSize !== undefined) spec.disk = { kind: "new", sizeGiB: diskSize, ...(str(args, "disk") ? { path: str(args, "disk") } : {}) };
  else if (str(args, "disk")) spec.disk = { kind: "existing", path: str(args, "disk") };
  set("osIso", str(args, "iso"));
  set("virtioIso", str(args, "virtio-iso"));
  if (str(args, "bridge")) spec.network = { kind: "bridge", bridge: str(args, "bridge") };
  if (args.values["no-network"]) spec.network = { kind: "none" };
  set("graphics", str(args, "graphics"));
  if (args.values.headless) spec.graphics = "none";
  set("inputDevices", str(args, "input"));
  return spec;
}

function printDetails(ctx: CliContext, d: VmDetails): void {
  const lines = [
    `name:      ${d.name}`,
    `state:     ${d.state}${d.id !== null ? ` (id ${d.id})` : ""}`,
    `template:  ${d.template ?? "-"}`,
    `vcpus:     ${d.vcpus ?? "-"}`,
    `memory:    ${d.memoryMiB ?? "-"} MiB`,
    `agent:     ${d.agentSocket ?? "(assigned when running)"}`,
    `shm:       ${d.shm ? `${d.shm.path} (${d.shm.sizeMiB} MiB)` : "-"}`,
    `hostdevs:  ${d.hostdevs.join(", ") || "-"}`,
    `disks:     ${d.disks.join(", ") || "-"}`,
    `display:   ${d.display.map((g) => `${g.type} ${[...g.sockets, ...g.tcp.map((t) => `TCP ${t} (redefine the VM)`)].join(", ") || "(listens nowhere)"}`).join("; ") || "-"}`,
  ];
  ctx.stdout(lines.join("\n") + "\n");
}

const SUBCOMMANDS = ["xml", "create", "list", "show", "start", "stop", "delete", "view"] as const;

/** Runs looking-glass-client for a VM in the desktop session, restarting it when it crashes, until SIGINT/SIGTERM. */
async function view(name: string, client: string, stateDir: string, ctx: CliContext): Promise<number> {
  checkName(name);
  const ini = vmSideFiles({ stateDir, targetRoot: "/" }, name).clientIni;
  if (!existsSync(ini)) throw new AppError("NOT_FOUND", `no looking-glass-client config for VM ${name} (${ini}); create the VM first`, { status: 404 });
  const sup = new ProcessSupervisor({
    argv: lookingGlassClientArgv(client, ini),
    onEvent: (e) => {
      if (e.kind === "exited") ctx.stderr(`looking-glass-client exited (${e.exitCode}); restarting in ${e.restartInMs} ms\n`);
    },
  });
  sup.start();
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await sup.stop();
  return 0;
}

export const vmCommand: Command = {
  name: "vm",
  summary: "Virtual machines: print a definition, define one in libvirt, list, show, start, stop, delete.",
  usage: [
    "vm xml --template T --name NAME [--gpu ADDR] [--resolution WxH] [--hdr] [--memory GiB] [--vcpus N] [--root DIR]",
    "       vm create (same flags) [--disk-size GiB] [--disk PATH] [--iso PATH] [--virtio-iso PATH] [--spec FILE]",
    "       vm list | show NAME | start NAME | stop NAME [--timeout S] [--force] | delete NAME [--delete-disk]",
    "       vm view NAME [--client BIN]   (the Looking Glass viewer, restarted when it crashes)",
  ].join("\n"),
  help: [
    "Options:",
    "  --template T       win11, win10 or linux",
    "  --name NAME        libvirt domain name (letters, digits, '.', '_', '-')",
    "  --gpu ADDR         GPU PCI address (0000:01:00.0); every function of its slot is passed through",
    "  --resolution WxH   guest display size for the Looking Glass shared memory (default 1920x1080)",
    "  --hdr              size the shared memory for HDR frames",
    "  --memory GiB       guest memory (default 8)",
    "  --vcpus N          virtual CPUs (default 4)",
    "  --root DIR         root holding sys/ for GPU function expansion (fixture trees)",
    "  --disk-size GiB    create a new qcow2 disk of this size (at --disk PATH or in the state dir)",
    "  --disk PATH        use an existing disk image",
    "  --iso, --virtio-iso PATH   install media",
    "  --bridge BR | --no-network  network (default: libvirt's NAT network 'default')",
    "  --graphics G       spice (default), vnc or none: on a unix socket <spiceDir>/NAME.spice|.vnc, never TCP",
    "  --headless         no display (--graphics none)",
    "  --input BUS        keyboard, mouse and tablet: virtio (default), usb (usb-kbd/-mouse/-tablet) or ps2 (the i8042 pair only)",
    "  --spec FILE        spec as JSON (flags override its fields)",
    "  --state-dir DIR    state directory (database, disks)",
    "  --client BIN       looking-glass-client to run for `vm view` (default looking-glass-client)",
    "  --json             machine-readable output",
  ].join("\n"),
  positionals: true,
  flags: {
    ...JSON_FLAG,
    template: { type: "string" },
    name: { type: "string" },
    gpu: { type: "string" },
    resolution: { type: "string" },
    hdr: { type: "boolean" },
    hugepages: { type: "boolean" },
    memory: { type: "string" },
    vcpus: { type: "string" },
    root: { type: "string" },
    "disk-size": { type: "string" },
    disk: { type: "string" },
    iso: { type: "string" },
    "virtio-iso": { type: "string" },
    bridge: { type: "string" },
    "no-network": { type: "boolean" },
    headless: { type: "boolean" },
    graphics: { type: "string" },
    input: { type: "string" },
    spec: { type: "string" },
    "state-dir": { type: "string" },
    timeout: { type: "string" },
    force: { type: "boolean" },
    "delete-disk": { type: "boolean" },
    client: { type: "string" },
  },
  async run(args, ctx) {
    const [sub, ...rest] = args.positionals;
    if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub))
      throw new UsageError(`vm: expected one of ${SUBCOMMANDS.join(", ")}${sub ? `, got ${JSON.stringify(sub)}` : ""}`);
    const config = configFrom(args, ctx, { "state-dir": "stateDir", root: "root" });
    if (sub === "xml") {
      if (rest.length) throw new UsageError("vm xml takes no positional arguments");
      const plan = planVm(specFromFlags(args), planDeps(config, hardwarePassthrough(new HardwareService(hardwareSettings(config)))));
      if (args.values.json) printJson(ctx, { xml: plan.xml, hostdevs: plan.hostdevs, shm: plan.shm, warnings: plan.warnings });
      else ctx.stdout(plan.xml);
      if (!args.values.json) for (const w of plan.warnings) ctx.stderr(`warning: ${w}\n`);
      return 0;
    }
    const needsName = sub !== "list" && sub !== "create";
    if (needsName && rest.length !== 1) throw new UsageError(`vm ${sub} needs exactly one VM name`);
    if (!needsName && rest.length) throw new UsageError(`vm ${sub} takes no positional arguments`);
    if (sub === "view") return view(rest[0]!, str(args, "client") ?? "looking-glass-client", config.stateDir, ctx);
    const core = createCore(config, { logger: silentLogger, embeddedNativeLib: ctx.embeddedNativeLib });
    try {
      const name = rest[0]!;
      switch (sub) {
        case "create": {
          const r = await core.vms.create(specFromFlags(args), "cli");
          if (args.values.json) printJson(ctx, r);
          else ctx.stdout(`defined ${r.name}${r.disk ? `, disk ${r.disk}` : ""}, shared memory ${r.shm.path} (${r.shm.sizeMiB} MiB)\n`);
          if (!args.values.json) for (const w of r.warnings) ctx.stderr(`warning: ${w}\n`);
          return 0;
        }
        case "list": {
          const vms: VmSummary[] = await core.vms.list();
          if (args.values.json) printJson(ctx, { vms });
          else for (const v of vms) ctx.stdout(`${v.name.padEnd(24)} ${v.state}\n`);
          return 0;
        }
        case "show": {
          const d = await core.vms.show(name);
          if (args.values.json) printJson(ctx, d);
          else printDetails(ctx, d);
          return 0;
        }
        case "start": {
          const d = await core.vms.start(name, "cli");
          if (args.values.json) printJson(ctx, d);
          else ctx.stdout(`started ${d.name}; agent socket ${d.agentSocket ?? "-"}\n`);
          return 0;
        }
        case "stop": {
          const r = await core.vms.stop(name, { timeoutSeconds: int(str(args, "timeout")) ?? 60, force: Boolean(args.values.force) }, "cli");
          if (args.values.json) printJson(ctx, r);
          else ctx.stdout(`${r.name}: ${r.state} (${r.method})\n`);
          return 0;
        }
        default: {
          await core.vms.remove(name, { deleteDisk: Boolean(args.values["delete-disk"]) }, "cli");
          if (args.values.json) printJson(ctx, { deleted: name });
          else ctx.stdout(`deleted ${name}\n`);
          return 0;
        }
      }
    } finally {
      core.close();
    }
  },
};
