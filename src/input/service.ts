/**
 * The input path of one streaming session: control-stream input payloads →
 * decoder → the session's input backend. Bad packets are counted and logged
 * (bounded) and change nothing; the session goes on.
 */
import type { Logger } from "../log.ts";
import type { InputBackend } from "./backend.ts";
import { decodeInputPacket } from "./decode.ts";
import { isRejection, type InputEvent, type InputRejection, type InputRejectionReason } from "./model.ts";

export interface InputSinkStats {
  packets: number;
  events: number;
  rejected: Partial<Record<InputRejectionReason, number>>;
  /** Events dropped because the client lacks a permission, by the permission it lacked. */
  denied: Record<string, number>;
}

/** Decides whether an event may go on: null lets it through, a name (the permission lacking) drops it. */
export type InputAdmission = (ev: InputEvent) => string | null;

/** Rejections logged one by one per session before only every LOG_EVERY-th is. */
const LOG_FIRST = 10;
const LOG_EVERY = 1000;

export class InputSink {
  private readonly counts: InputSinkStats = { packets: 0, events: 0, rejected: {}, denied: {} };
  private rejectedTotal = 0;
  private deniedTotal = 0;

  constructor(
    private readonly backend: InputBackend,
    private readonly log: Logger,
    /** Checked per event (absent: every event goes on). */
    private readonly admit?: InputAdmission,
  ) {}

  /** Deliver one input packet (the payload of a control message of type 0x0206). Never throws. */
  deliver(payload: Uint8Array): InputEvent | InputRejection {
    this.counts.packets++;
    const r = decodeInputPacket(payload);
    if (isRejection(r)) {
      this.counts.rejected[r.reason] = (this.counts.rejected[r.reason] ?? 0) + 1;
      this.rejectedTotal++;
      if (this.rejectedTotal <= LOG_FIRST || this.rejectedTotal % LOG_EVERY === 0) {
        this.log.warn("input packet rejected", {
          reason: r.reason,
          detail: r.message,
          bytes: payload.length,
          rejectedSoFar: this.rejectedTotal,
        });
      }
      return r;
    }
    this.counts.events++;
    const lacking = this.admit?.(r) ?? null;
    if (lacking !== null) {
      this.counts.denied[lacking] = (this.counts.denied[lacking] ?? 0) + 1;
      this.deniedTotal++;
      if (this.deniedTotal <= LOG_FIRST || this.deniedTotal % LOG_EVERY === 0) {
        this.log.warn("input event dropped: the client lacks the permission", { kind: r.kind, permission: lacking, deniedSoFar: this.deniedTotal });
      }
      return r;
    }
    this.backend.submit([r]);
    return r;
  }

  stats(): InputSinkStats {
    return { ...this.counts, rejected: { ...this.counts.rejected }, denied: { ...this.counts.denied } };
  }

  /** Session end: release everything the client left pressed. */
  async end(): Promise<void> {
    await this.backend.releaseAll();
  }
}
