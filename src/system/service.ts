/** Health and identity of the running appliance. */
import type { Config } from "../config.ts";
import { APPLIANCE_VERSION } from "../version.ts";
import type { CodecSupportReport } from "../gamestream/codecs.ts";
import { runDoctor, type NativeState } from "./doctor.ts";
import type { SystemInfo } from "./model.ts";

export class SystemService {
  private readonly startedAt = performance.now();

  constructor(
    private readonly config: Config,
    /** The native library's state (loads it when it is not yet). */
    private readonly nativeState: () => NativeState,
    private readonly schemaVersion: () => number,
    /** The codec offer of the running host (the doctor reports it instead of measuring). */
    private readonly codecs?: () => CodecSupportReport,
  ) {}

  health(): { status: "ok" } {
    return { status: "ok" };
  }

  async info(): Promise<SystemInfo> {
    const native = this.nativeState();
    return {
      version: APPLIANCE_VERSION,
      uptimeSeconds: Math.round((performance.now() - this.startedAt) / 10) / 100,
      native: { loaded: native.error === null, version: native.version, path: native.path },
      db: { path: this.config.dbPath, schemaVersion: this.schemaVersion() },
      doctor: await runDoctor(this.config, native, { codecs: this.codecs }),
    };
  }
}
