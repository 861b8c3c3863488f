/**
 * Settings of the appliance: one zod schema, three layers.
 *
 *   config file (/etc/neuron-appliance/config.json or --config)  <  env (NEURON_*)  <  flags
 *
 * Every filesystem path, port and external binary the appliance touches lives
 * here, so tests point the appliance at fixture trees and local components.
 * Parsed once at start and passed explicitly; nothing reads process.env later.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { AppError } from "./errors.ts";
import { GameStreamAudioSettingsSchema } from "./gamestream/audio/settings.ts";
import { GameStreamCodecSettingsSchema } from "./gamestream/codec-settings.ts";
import { GuestAgentSettingsSchema } from "./guest/settings.ts";
import { UpdatesSettingsSchema } from "./updates/settings.ts";
import { MigrationSettingsSchema } from "./migration/settings.ts";

export const DEFAULT_CONFIG_PATH = "/etc/neuron-appliance/config.json";

const port = z.number().int().min(0).max(65535);
const path = z.string().min(1, "must not be empty");
const binary = z.string().min(1, "must not be empty");

export const BinariesSchema = z
  .object({
    virsh: binary.default("virsh"),
    qemuImg: binary.default("qemu-img"),
    qemuSystem: binary.default("qemu-system-x86_64"),
    modprobe: binary.default("modprobe"),
    mkinitcpio: binary.default("mkinitcpio"),
    pacman: binary.default("pacman"),
    snapper: binary.default("snapper"),
    btrfs: binary.default("btrfs"),
    systemctl: binary.default("systemctl"),
    grubEditenv: binary.default("grub-editenv"),
    openssl: binary.default("openssl"),
    dracut: binary.default("dracut"),
    updateInitramfs: binary.default("update-initramfs"),
    grubMkconfig: binary.default("grub-mkconfig"),
    chroot: binary.default("chroot"),
    xorriso: binary.default("xorriso"),
    swtpm: binary.default("swtpm"),
    pactl: binary.default("pactl"),
  })
  .strict();

export const ConfigSchema = z
  .object({
    /** Management API bind address. Anything but loopback is an explicit choice. */
    host: z.string().min(1).default("127.0.0.1"),
    /**
     * TLS for the management API's TCP listener. Required when `host` is not loopback:
     * `cert` + `key` (PEM files), or `selfSigned` for the appliance's own certificate
     * (created once in <stateDir>/api-tls/).
     */
    apiTls: z
      .object({ cert: path.optional(), key: path.optional(), selfSigned: z.boolean().default(false) })
      .strict()
      .refine((t) => (t.cert === undefined) === (t.key === undefined), "cert and key go together")
      .default({ selfSigned: false }),
    /** Extra names the API answers to in the Host header (besides loopback names, the bind address and the machine's name). */
    apiHostnames: z.array(z.string().min(1).max(253).regex(/^[A-Za-z0-9.:\[\]-]+$/, "a host name or address")).max(64).default([]),
    /**
     * The appliance's administrators (the desktop user is in it): with root, full access on the
     * local API socket (0660 to this group), and the group of the VMs' display sockets.
     */
    adminGroup: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a group name").default("neuron"),
    /** Where passwd and group are read to learn a local caller's groups. */
    etcDir: path.default("/etc"),
    /** Bounds on a JSON request body, checked before it is parsed. */
    apiJsonLimits: z
      .object({
        depth: z.number().int().min(1).max(512).default(32),
        keysPerObject: z.number().int().min(1).max(100_000).default(1000),
        values: z.number().int().min(1).max(10_000_000).default(100_000),
        stringBytes: z.number().int().min(16).max(64 * 1024 * 1024).default(8 * 1024 * 1024),
      })
      .strict()
      .default({ depth: 32, keysPerObject: 1000, values: 100_000, stringBytes: 8 * 1024 * 1024 }),
    /** How long a one-time login code and a browser session last (ms). */
    loginCodeTtlMs: z.number().int().min(10_000).max(3_600_000).default(300_000),
    browserSessionTtlMs: z.number().int().min(60_000).max(30 * 86_400_000).default(12 * 3_600_000),
    /** Management API TCP port (0 = pick a free one). */
    port: port.default(8547),
    /** Where the database, keys and certificates live. */
    stateDir: path.default(defaultStateDir()),
    /** SQLite database file; default <stateDir>/neuron.db. */
    dbPath: path.optional(),
    /** Local API unix socket for CLI → service calls; default <stateDir>/api.sock. */
    socketPath: path.optional(),
    /** Root that holds sys/ and proc/ (hardware detection reads <root>/sys, <root>/proc). */
    root: path.default("/"),
    /** Root under which system edits happen (modprobe.d, kernel cmdline, initramfs config). */
    targetRoot: path.default("/"),
    /** Hardware detection data: pci.ids (default: the distribution's) and the vendor-reset id list (default: built in). */
    hardware: z
      .object({ pciIds: path.optional(), vendorResetIds: path.optional() })
      .strict()
      .default({}),
    /** Directory of POSIX shared memory files (IVSHMEM / Looking Glass). */
    shmDir: path.default("/dev/shm"),
    /** QEMU firmware descriptors (libvirt picks OVMF from them; doctor checks for Secure Boot). */
    firmwareDir: path.default("/usr/share/qemu/firmware"),
    /** Device nodes the appliance probes. */
    kvmDevice: path.default("/dev/kvm"),
    uinputDevice: path.default("/dev/uinput"),
    /** Input into VMs (the inject-input API, its WebSocket, `input send`). */
    input: z
      .object({
        /** QEMU's keyboard layout files: text is typed by the guest's layout from these. */
        keymapDir: path.default("/usr/share/qemu/keymaps"),
        /** The guest's keyboard layout per VM (QEMU keymap name: us, de, fr, ...); default us. */
        layouts: z.record(z.string(), z.string().regex(/^[a-z]{2}(-[a-z]{2})?$/)).default({}),
        /** Pointer motion within this interval coalesces into one event (ms; 0: none). */
        frameMs: z.number().int().min(0).max(100).default(8),
        /** Key repeat: left to the guest, or made by the appliance (500 ms, then 24.9 Hz) for held keys. */
        keyRepeat: z.enum(["guest", "host"]).default("guest"),
        /** Sinks pinned per VM and event class: { "win11": { "pointer": "usb" } }. */
        pins: z
          .record(z.string(), z.object({ keyboard: z.enum(["ps2", "usb", "virtio", "agent"]).optional(), pointer: z.enum(["ps2", "usb", "virtio", "agent"]).optional(), absolute: z.enum(["usb", "virtio", "agent"]).optional(), gamepad: z.enum(["agent", "host-uinput"]).optional() }).strict())
          .default({}),
        /**
         * The pad the guest agent makes per VM: "uinput" (an Xbox 360 pad through uinput, with
         * rumble), "xbox" (an Xbox-like USB HID pad through uhid), "dualsense" (a DualSense-like
         * pad through uhid: Linux's hid-playstation adds its motion sensors and touchpad), "auto"
         * (per controller: the DualSense for a PlayStation controller, else the uinput pad).
         */
        padDevice: z.record(z.string(), z.enum(["uinput", "xbox", "dualsense", "auto"])).default({}),
      })
      .strict()
      .default({ keymapDir: "/usr/share/qemu/keymaps", layouts: {}, frameMs: 8, keyRepeat: "guest", pins: {}, padDevice: {} }),
    /** vhost-vsock: without it no VM gets a vsock device (frame export falls back to a unix socket). */
    vsockDevice: path.default("/dev/vhost-vsock"),
    /** Where unix-socket frame sources listen (<frameSocketDir>/<vm>.nvf). */
    frameSocketDir: path.default("/run/neuron-appliance-frames"),
    /** libvirt connection URI. */
    libvirtUri: z.string().min(1).default("qemu:///system"),
    /** The longest one libvirt call (a virsh process) may take before it fails with a timeout (ms). */
    libvirtTimeoutMs: z.number().int().min(1000).max(600_000).default(60_000),
    /** libvirt domain type of the VMs the appliance defines: kvm, or qemu (software emulation) where KVM cannot run them (nested hosts, tests). */
    vmDomainType: z.enum(["kvm", "qemu"]).default("kvm"),
    /**
     * Where each VM's QMP monitor socket lives (<qmpDir>/<vm>.qmp, written into the domain XML):
     * input goes into the VM through it. QEMU (libvirt's qemu user) creates the socket, so the
     * directory is owned by that user: the owner of libvirtQemuDir.
     */
    qmpDir: path.default("/var/lib/neuron-appliance-qmp"),
    /**
     * Where each VM's display sockets live (<spiceDir>/<vm>.spice, <spiceDir>/<vm>.vnc, written into
     * the domain XML as `<listen type='socket'>`): SPICE and VNC never listen on TCP. QEMU creates
     * them, so the directory belongs to QEMU's user, group adminGroup, mode 2750.
     */
    spiceDir: path.default("/var/lib/neuron-appliance-spice"),
    /** libvirt's QEMU state directory: its owner is the user and group libvirt runs QEMU as. */
    libvirtQemuDir: path.default("/var/lib/libvirt/qemu"),
    /** The desktop user who runs looking-glass-client: owner of the VMs' IVSHMEM files (group kvm, 0660). */
    desktopUser: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a user name").optional(),
    /** GameStream base port: HTTP = base, HTTPS = base-5, RTSP = base+21, video/control/audio = base+9/10/11. */
    gamestreamPort: z.number().int().min(6, "must leave room for HTTPS at base-5").max(65535 - 21, "must leave room for RTSP at base+21").default(47989),
    /** Run the GameStream host (Moonlight clients) inside `serve`. */
    gamestreamEnabled: z.boolean().default(true),
    /** GameStream bind address: clients on the LAN must reach it. */
    gamestreamHost: z.string().min(1).default("0.0.0.0"),
    /** Clients that may stream at once (one session each); a launch beyond it is refused. */
    gamestreamMaxSessions: z.number().int().min(1).max(16).default(2),
    /** A client whose control stream is silent this long is timed out and its session ended (ms). */
    gamestreamControlTimeoutMs: z.number().int().min(500).max(120_000).default(10_000),
    /** Run the lumen/1 host (the native stream protocol) inside `serve`. */
    lumenEnabled: z.boolean().default(false),
    /** lumen/1 port P: QUIC control on UDP P (TLS fallback on TCP P), the data plane on UDP P + 1. */
    lumenPort: z.number().int().min(1).max(65534).default(48100),
    /** lumen/1 bind address. */
    lumenHost: z.string().min(1).default("0.0.0.0"),
    /** VM whose QMP monitor receives lumen/1 sessions' input (absent or not running: counted only). */
    lumenInputVm: z.string().min(1).max(64).optional(),
    /** lumen/1 sessions at once. */
    lumenMaxSessions: z.number().int().min(1).max(16).default(4),
    /** Advertise the host over mDNS (_nvstream._tcp). */
    mdns: z.boolean().default(true),
    /** Host name shown to clients; default: the machine's. */
    hostname: z.string().min(1).max(63).optional(),
    /** How long a pairing client waits for the PIN to be entered on the host. */
    /** GameStream audio source: the VM's sound through a capture command or a pulse socket; test tone otherwise. */
    gamestreamAudio: GameStreamAudioSettingsSchema,
    /**
     * Codecs offered in serverinfo's ServerCodecModeSupport: per codec auto | on | off, the modes
     * software encoders are measured at at start-up, the margin they need (README, "Codecs offered").
     */
    gamestreamCodecs: GameStreamCodecSettingsSchema,
    pairingPinTimeoutMs: z.number().int().min(1000).max(600_000).default(120_000),
    /** Pairing attempts (getservercert) one client address may start per minute; more are refused with a message the client shows. */
    pairingAttemptsPerMinute: z.number().int().min(1).max(1000).default(5),
    /**
     * Extra names the GameStream HTTP(S) ports answer to in the Host header (a DNS name clients
     * use to reach this host from afar). The machine's hostname, hostname.local, localhost and
     * IP address literals are always accepted; any other name is refused (DNS rebinding).
     */
    gamestreamHostNames: z.array(z.string().min(1).max(253).regex(/^[A-Za-z0-9.-]+$/, "a DNS name")).max(32).default([]),
    /** Explicit path of libneuron.so; default: embedded in the binary, then beside it, then the source tree. */
    nativeLib: path.optional(),
    /** Largest accepted HTTP request body, bytes. */
    maxBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
    logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
    /** json: one object per line (systemd); text: readable; auto: text on a TTY. */
    logFormat: z.enum(["auto", "json", "text"]).default("auto"),
    /** External binaries, by name on PATH or absolute path. */
    bin: BinariesSchema.default(BinariesSchema.parse({})),
    /** Guest agent channel: TLS, timeouts, host clipboard commands. */
    guestAgent: GuestAgentSettingsSchema,
    /** System updates inside snapshots: package command, checks, retention, rollback policy. */
    updates: UpdatesSettingsSchema,
    /** The setup flow: what a VM it creates leaves the host (memory and logical CPUs). */
    setup: z
      .object({
        hostMemoryPercent: z.number().int().min(0).max(90).default(25),
        hostMemoryMinMiB: z.number().int().min(0).max(1024 * 1024).default(4096),
        hostCpuPercent: z.number().int().min(0).max(90).default(25),
        hostCpuMin: z.number().int().min(0).max(256).default(2),
        /** How long the agent and Looking Glass steps wait for the guest in one pass (ms). */
        guestWaitMs: z.number().int().min(0).max(600_000).default(5000),
        /** How often `serve` continues a flow that can go on by itself (guest steps), ms; 0: never. */
        resumeIntervalMs: z.number().int().min(0).max(3_600_000).default(30_000),
        /** The Windows build of the guest agent put on the unattended-install ISO. */
        guestAgentExe: path.default("/usr/lib/neuron-appliance/neuron-agent.exe"),
      })
      .strict()
      .default({ hostMemoryPercent: 25, hostMemoryMinMiB: 4096, hostCpuPercent: 25, hostCpuMin: 2, guestWaitMs: 5000, resumeIntervalMs: 30_000, guestAgentExe: "/usr/lib/neuron-appliance/neuron-agent.exe" }),
    /** Data migration from a Windows disk or directory: mount programs, drivers, conflict policy. */
    migration: MigrationSettingsSchema,
  })
  .strict();

export type ConfigInput = z.input<typeof ConfigSchema>;
type ParsedConfig = z.output<typeof ConfigSchema>;
export type Config = Omit<ParsedConfig, "dbPath" | "socketPath"> & {
  dbPath: string;
  socketPath: string;
  /** Where the file layer came from, or null when none was read. */
  configFile: string | null;
};

function defaultStateDir(): string {
  if (process.getuid?.() === 0) return "/var/lib/neuron-appliance";
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".local", "state"), "neuron-appliance");
}

/** Keys of the schema in NEURON_* form: stateDir → NEURON_STATE_DIR, bin.virsh → NEURON_BIN_VIRSH. */
export function envName(keyPath: string[]): string {
  return "NEURON_" + keyPath.map((k) => k.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("_");
}

type Leaf = { keyPath: string[]; numeric: boolean; boolean: boolean };

function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

function leaves(shape: Record<string, z.ZodType>, prefix: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  for (const [key, field] of Object.entries(shape)) {
    const inner = unwrap(field);
    if (inner instanceof z.ZodObject) out.push(...leaves(inner.shape as Record<string, z.ZodType>, [...prefix, key]));
    else out.push({ keyPath: [...prefix, key], numeric: inner instanceof z.ZodNumber, boolean: inner instanceof z.ZodBoolean });
  }
  return out;
}

const LEAVES = leaves(ConfigSchema.shape as Record<string, z.ZodType>);

function setPath(target: Record<string, unknown>, keyPath: string[], value: unknown): void {
  let node = target;
  for (const k of keyPath.slice(0, -1)) {
    const next = node[k];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  node[keyPath[keyPath.length - 1]!] = value;
}

function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b))
      out[k] = mergeDeep(b as Record<string, unknown>, v as Record<string, unknown>);
    else if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A string from env/flags for a numeric or boolean field converts only when it is one; else zod names the error. */
function scalar(raw: string, leaf: Leaf): unknown {
  const t = raw.trim();
  if (leaf.numeric && /^-?\d+$/.test(t)) return Number(t);
  if (leaf.boolean && /^(true|1|yes|on)$/i.test(t)) return true;
  if (leaf.boolean && /^(false|0|no|off)$/i.test(t)) return false;
  return raw;
}

export class ConfigError extends AppError {
  constructor(message: string, cause?: unknown) {
    super("CONFIG_INVALID", message, { status: 500, cause });
  }
}

export interface LoadConfigOptions {
  /** --config: an explicit file must exist; the default file may be absent; null reads no file. */
  configPath?: string | null;
  env?: Record<string, string | undefined>;
  /** Values from command-line flags, already in schema shape (strings are accepted for numbers). */
  flags?: Record<string, unknown>;
  /** Base directory for relative paths (default: process.cwd()). */
  cwd?: string;
}

function readConfigFile(file: string, explicit: boolean): Record<string, unknown> | null {
  if (!existsSync(file)) {
    if (explicit) throw new ConfigError(`config file ${file}: not found`);
    return null;
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${file}: cannot read (${(err as Error).message})`, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file}: invalid JSON (${(err as Error).message})`, err);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new ConfigError(`config file ${file}: must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

function formatIssues(issues: z.core.$ZodIssue[], sourceOf: (key: string) => string): string {
  return issues
    .map((i) => {
      const key = i.path.length ? i.path.join(".") : "(root)";
      const keys = i.code === "unrecognized_keys" ? ` ${(i as { keys: string[] }).keys.join(", ")}` : "";
      return `${key}${keys}: ${i.message}${sourceOf(key)}`;
    })
    .join("; ");
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.configPath === null ? undefined : (opts.configPath ?? env.NEURON_CONFIG);
  const file = explicit ? resolve(cwd, explicit) : DEFAULT_CONFIG_PATH;
  const fromFile = opts.configPath === null ? {} : (readConfigFile(file, explicit !== undefined) ?? {});

  const fromEnv: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  for (const leaf of LEAVES) {
    const name = envName(leaf.keyPath);
    const raw = env[name];
    if (raw !== undefined) {
      setPath(fromEnv, leaf.keyPath, scalar(raw, leaf));
      origin.set(leaf.keyPath.join("."), `env ${name}`);
    }
  }
  const fromFlags: Record<string, unknown> = {};
  for (const leaf of LEAVES) {
    let v: unknown = opts.flags;
    for (const k of leaf.keyPath) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
    if (v !== undefined) {
      setPath(fromFlags, leaf.keyPath, typeof v === "string" ? scalar(v, leaf) : v);
      origin.set(leaf.keyPath.join("."), "command-line flag");
    }
  }
  for (const key of Object.keys(fromFile)) if (!origin.has(key)) origin.set(key, `config file ${file}`);

  const merged = mergeDeep(mergeDeep(fromFile, fromEnv), fromFlags);
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const sourceOf = (key: string) => {
      const o = origin.get(key) ?? origin.get(key.split(".")[0]!);
      return o ? ` (from ${o})` : "";
    };
    throw new ConfigError(`invalid configuration: ${formatIssues(result.error.issues, sourceOf)}`);
  }
  const c = result.data;
  const abs = (p: string) => resolve(cwd, p);
  const stateDir = abs(c.stateDir);
  return {
    ...c,
    stateDir,
    root: abs(c.root),
    etcDir: abs(c.etcDir),
    apiTls: { ...c.apiTls, cert: c.apiTls.cert === undefined ? undefined : abs(c.apiTls.cert), key: c.apiTls.key === undefined ? undefined : abs(c.apiTls.key) },
    targetRoot: abs(c.targetRoot),
    shmDir: abs(c.shmDir),
    updates: { ...c.updates, root: abs(c.updates.root) },
    setup: { ...c.setup, guestAgentExe: abs(c.setup.guestAgentExe) },
    qmpDir: abs(c.qmpDir),
    spiceDir: abs(c.spiceDir),
    libvirtQemuDir: abs(c.libvirtQemuDir),
    kvmDevice: abs(c.kvmDevice),
    firmwareDir: abs(c.firmwareDir),
    uinputDevice: abs(c.uinputDevice),
    input: { ...c.input, keymapDir: abs(c.input.keymapDir) },
    vsockDevice: abs(c.vsockDevice),
    frameSocketDir: abs(c.frameSocketDir),
    nativeLib: c.nativeLib === undefined ? undefined : abs(c.nativeLib),
    dbPath: c.dbPath ? abs(c.dbPath) : join(stateDir, "neuron.db"),
    socketPath: c.socketPath ? abs(c.socketPath) : join(stateDir, "api.sock"),
    configFile: opts.configPath !== null && existsSync(file) ? file : null,
  };
}
