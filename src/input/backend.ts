/**
 * Input backends: where a session's decoded input events go (a VM's QMP
 * monitor, a uinput device, ...). An ops table behind one interface, chosen by
 * probing: the first candidate whose `open()` succeeds serves the session.
 */
import { AppError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { InputEvent, InputEventKind } from "./model.ts";

export interface InputCapabilities {
  keyboard: boolean;
  relativePointer: boolean;
  absolutePointer: boolean;
  /** Vertical wheel. */
  wheel: boolean;
  /** Horizontal wheel. */
  hwheel: boolean;
  /** UTF-8 text (fully, or the subset the backend can type). */
  text: boolean;
  /** Touch / pen (natively or emulated as an absolute pointer). */
  touch: boolean;
  gamepad: boolean;
}

export interface InputBackendStats {
  /** Client events accepted by submit(). */
  accepted: number;
  /** Events delivered to the target (backend units, e.g. QMP input events). */
  delivered: number;
  /** Batches (e.g. QMP commands) sent. */
  batches: number;
  /** Batches the target refused. */
  refusedBatches: number;
  /** Client events the backend cannot express (gamepads on QMP, ...), by kind. */
  unsupported: Partial<Record<InputEventKind, number>>;
  /** Keys without a mapping (VK codes). */
  unmappedKeys: number;
  /** Events dropped: not connected, or the bounded queue was full. */
  dropped: number;
  /** Times the connection to the target was (re)established. */
  connects: number;
}

export interface InputBackend {
  readonly name: string;
  readonly capabilities: InputCapabilities;
  /** Connect and learn what the target supports. Throws AppError when it cannot serve. */
  open(): Promise<void>;
  /** Queue events (never throws, never blocks); events queued together are delivered together. */
  submit(events: readonly InputEvent[]): void;
  /** Resolves once everything submitted so far was handed to the target (or dropped). */
  flush(): Promise<void>;
  /** Release every key and button the backend believes held (session end, focus loss). */
  releaseAll(): Promise<void>;
  /** releaseAll(), then disconnect. Idempotent. */
  close(): Promise<void>;
  stats(): InputBackendStats;
}

export interface InputBackendCandidate {
  name: string;
  create(): InputBackend;
}

/** Probe candidates in order; return the first backend that opens. */
export async function selectInputBackend(
  candidates: readonly InputBackendCandidate[],
  log?: Logger,
): Promise<InputBackend> {
  const reasons: string[] = [];
  for (const c of candidates) {
    const backend = c.create();
    try {
      await backend.open();
      log?.info("input backend selected", { backend: c.name });
      return backend;
    } catch (err) {
      reasons.push(`${c.name}: ${describeError(err)}`);
      log?.debug("input backend unavailable", { backend: c.name, err });
      await backend.close().catch(() => {});
    }
  }
  throw new AppError("INPUT_BACKEND_UNAVAILABLE", `no input backend available (${reasons.join("; ") || "none configured"})`, {
    status: 503,
  });
}

export const emptyStats = (): InputBackendStats => ({
  accepted: 0,
  delivered: 0,
  batches: 0,
  refusedBatches: 0,
  unsupported: {},
  unmappedKeys: 0,
  dropped: 0,
  connects: 0,
});

/** The counts of two backends that serve one session together, added up. */
export function sumStats(a: InputBackendStats, b: InputBackendStats): InputBackendStats {
  const unsupported: InputBackendStats["unsupported"] = { ...a.unsupported };
  for (const [k, v] of Object.entries(b.unsupported) as [keyof InputBackendStats["unsupported"], number][]) unsupported[k] = (unsupported[k] ?? 0) + v;
  return {
    accepted: a.accepted + b.accepted,
    delivered: a.delivered + b.delivered,
    batches: a.batches + b.batches,
    refusedBatches: a.refusedBatches + b.refusedBatches,
    unsupported,
    unmappedKeys: a.unmappedKeys + b.unmappedKeys,
    dropped: a.dropped + b.dropped,
    connects: a.connects + b.connects,
  };
}
