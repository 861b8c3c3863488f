/** System update settings (the `updates` key of the config). */
import { z } from "zod";

const argv = z.array(z.string().min(1).max(4096)).min(1).max(64);

export const CheckCommandSchema = z.strictObject({
  name: z.string().min(1).max(100),
  /** Run through `sh -c`, with NEURON_ROOT set to the system root; exit 0 = passed. */
  command: z.string().min(1).max(4096),
  /** Required checks roll the update back when they fail; wanted ones are reported only. */
  required: z.boolean().default(true),
  timeoutMs: z.number().int().min(100).max(600_000).default(60_000),
});
export type CheckCommand = z.output<typeof CheckCommandSchema>;

const BUILTIN_CHECKS = ["binaries", "system-running", "services", "vfio", "libvirt", "api", "looking-glass", "modules"] as const;
export const BuiltinCheckSchema = z.enum(BUILTIN_CHECKS);
export type BuiltinCheck = z.output<typeof BuiltinCheckSchema>;

export const UpdatesSettingsSchema = z
  .strictObject({
    /** The system root the updates act on: "/" on a real system; a mounted tree for chroots and tests. */
    root: z.string().min(1).default("/"),
    /** The boot partition, relative to root (a vfat ESP when it is outside the root subvolume). */
    bootDir: z.string().min(1).default("/boot"),
    /** pacman's database directory, relative to root. */
    pacmanDbPath: z.string().min(1).default("/var/lib/pacman"),
    /** The package command (argv); null = `pacman -Syu --noconfirm` (with --root and its paths when root is not "/"). */
    command: argv.nullable().default(null),
    commandTimeoutMs: z.number().int().min(1000).max(24 * 3_600_000).default(2 * 3_600_000),
    /** Refuse to start below this much free space on the root file system (MiB). Retention also keeps it. */
    minFreeMb: z.number().int().min(0).max(10_000_000).default(2048),
    /** Keep the last N pre/post pairs. */
    keepPairs: z.number().int().min(1).max(1000).default(10),
    /** snapper config name; null = the snapper config whose subvolume is the root, if snapper has one (else plain btrfs). */
    snapperConfig: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).nullable().default(null),
    /** Paths (relative to root) that stay out of rollback: separate subvolumes, or carried over into the rolled-back tree. */
    keepOut: z.array(z.string().min(1)).max(64).default(["/home", "/var/lib/libvirt", "/var/lib/neuron-appliance"]),
    /** Built-in required checks to run. */
    builtinChecks: z.array(BuiltinCheckSchema).default([...BUILTIN_CHECKS]),
    /** Binaries (relative to root) that must exist and be executable after an update. */
    criticalBinaries: z.array(z.string().min(1)).max(256).default(["/usr/bin/bash", "/usr/bin/pacman", "/usr/bin/systemctl", "/usr/lib/systemd/systemd", "/usr/bin/neuron-appliance"]),
    /** Units that must be active (a display manager, NetworkManager, libvirtd). */
    requiredUnits: z.array(z.string().min(1)).max(64).default(["display-manager.service", "NetworkManager.service", "libvirtd.service"]),
    /** Out-of-tree modules the appliance depends on: present for the old kernel ⇒ must be present for the new one. */
    outOfTreeModules: z.array(z.string().regex(/^[A-Za-z0-9_-]+$/)).max(32).default(["vendor-reset", "kvmfr"]),
    /** Extra health checks. */
    checks: z.array(CheckCommandSchema).max(64).default([]),
    /** After a rollback: schedule a reboot (argv; null = no reboot). */
    rebootCommand: argv.nullable().default(["shutdown", "-r", "+1", "NeuronOS rolled back a failed update"]),
    /** An update found interrupted at the next start: roll back always, only when checks fail, or never. */
    onInterrupted: z.enum(["always", "on-failure", "never"]).default("always"),
    /** Boot counting tries armed after an update (systemd-boot `+N`, GRUB boot_counter). */
    bootTries: z.number().int().min(1).max(10).default(3),
  })
  .prefault({});
export type UpdatesSettings = z.output<typeof UpdatesSettingsSchema>;
