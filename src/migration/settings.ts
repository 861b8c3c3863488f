/** Data migration settings (the `migration` key of the config). */
import { z } from "zod";

const binary = z.string().min(1).max(4096);

export const MigrationSettingsSchema = z
  .strictObject({
    /** External programs: mounting NTFS read-only, loop devices, BitLocker. */
    bin: z
      .strictObject({
        losetup: binary.default("losetup"),
        mount: binary.default("mount"),
        umount: binary.default("umount"),
        ntfs3g: binary.default("ntfs-3g"),
        ntfsinfo: binary.default("ntfsinfo"),
        dislocker: binary.default("dislocker"),
        cryptsetup: binary.default("cryptsetup"),
      })
      .prefault({}),
    /** Kernel driver first (ntfs3), then the FUSE one (ntfs-3g). */
    drivers: z.array(z.enum(["ntfs3", "ntfs-3g"])).min(1).max(2).default(["ntfs3", "ntfs-3g"]),
    /** Where the appliance mounts sources; default <stateDir>/migration-mounts. */
    mountDir: z.string().min(1).optional(),
    /**
     * How long a mounted disk or image stays mounted after a plan or run is done with it (ms): a
     * run soon after its plan finds the volume mounted with the plan's lookups still cached.
     */
    holdSourceMs: z.number().int().min(0).max(600_000).default(60_000),
    /** Threads copying and verifying files at once. */
    copyThreads: z.number().int().min(1).max(16).default(2),
    /** Conflict policy when a plan names none. */
    policy: z.enum(["skip", "rename", "newer"]).default("skip"),
    /** Throughput assumed by the plan's time estimate (MB/s) and the per-file cost (ms). */
    estimateMBps: z.number().min(1).max(100_000).default(250),
    estimatePerFileMs: z.number().min(0).max(1000).default(0.3),
  })
  .prefault({});
export type MigrationSettings = z.output<typeof MigrationSettingsSchema>;
