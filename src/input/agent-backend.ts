/**
 * Gamepads through the guest agent: GameStream controller events become
 * gamepad_attach / gamepad_state / gamepad_detach requests to the session VM's
 * agent, which drives a virtual pad inside the guest. Per pad at most one
 * request is in flight and one state waits behind it: a newer state replaces
 * the waiting one (latest wins, the queue never grows).
 */
import { AppError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { MAX_GAMEPADS, neutralState, type GamepadRumble, type GamepadState } from "../guest/gamepad-model.ts";
import { emptyStats, type InputBackend, type InputBackendStats, type InputCapabilities } from "./backend.ts";
import { moonlightToGamepad } from "./gamepad-map.ts";
import type { InputEvent } from "./model.ts";
import type { HidOutput } from "../guest/hid-model.ts";
import type { HidCommand } from "../guest/hid-model.ts";

export type GamepadCommand = "gamepad_attach" | "gamepad_state" | "gamepad_detach" | HidCommand;
/** The agent connection as the agent sink's backends need it (GuestService.command or AgentClient.request fit). */
export interface GamepadLink {
  request(command: GamepadCommand, data: Record<string, unknown>): Promise<unknown>;
  /** Hears the guest pads' rumble (gamepad_rumble events); returns the unsubscribe. */
  onRumble?(listener: (r: GamepadRumble) => void): () => void;
  /** Hears the HID devices' output reports (hid_output events); returns the unsubscribe. */
  onHidOutput?(listener: (o: HidOutput) => void): () => void;
}

/** A rumble for the client, in the control stream's terms. */
export interface PadRumble {
  controller: number;
  lowFreq: number;
  highFreq: number;
}

type PadPhase = "attaching" | "attached" | "failed" | "detaching";
const notAttached = (err: unknown): boolean =>
  err instanceof AppError && (err.details as { code?: unknown } | undefined)?.code === "GAMEPAD_NOT_ATTACHED";

/** A pad the guest could not attach is tried again after this long (on its next event). */
const RETRY_ATTACH_MS = 5_000;

/** A guest that keeps losing a pad is not re-attached more often than this. */
const REATTACH_MIN_INTERVAL_MS = 1_000;

interface Pad {
  phase: PadPhase;
  failedAt?: number;
  reattachedAt?: number;
  pending: GamepadState | null;
  busy: boolean;
  last: GamepadState;
}

export class AgentGamepadBackend implements InputBackend {
  readonly name = "agent-gamepad";
  readonly capabilities: InputCapabilities = {
    keyboard: false,
    relativePointer: false,
    absolutePointer: false,
    wheel: false,
    hwheel: false,
    text: false,
    touch: false,
    gamepad: true,
  };
  private readonly pads = new Map<number, Pad>();
  private readonly counters: InputBackendStats = emptyStats();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly tails = new Map<number, Promise<void>>();
  private pendingOps = 0;
  private closed = false;
  /** States replaced by a newer one before they were sent. */
  coalesced = 0;

  private unsubscribe: (() => void) | null = null;

  constructor(private readonly opts: { link: GamepadLink; log: Logger; onRumble?: (r: PadRumble) => void }) {}

  async open(): Promise<void> {
    const { link, onRumble } = this.opts;
    if (onRumble && link.onRumble && !this.unsubscribe) {
      this.unsubscribe = link.onRumble((r) => {
        // Only this session's pads (another session may drive the same guest).
        if (this.pads.get(r.index)?.phase === "attached") onRumble({ controller: r.index, lowFreq: r.low, highFreq: r.high });
      });
    }
  }

  submit(events: readonly InputEvent[]): void {
    for (const ev of events) {
      this.counters.accepted++;
      if (this.closed || ("controllerNumber" in ev && !(ev.controllerNumber >= 0 && ev.controllerNumber < MAX_GAMEPADS))) {
        this.counters.dropped++;
        continue;
      }
      switch (ev.kind) {
        case "controllerArrival":
          this.ensure(ev.controllerNumber);
          break;
        case "controller": {
          for (const [i, pad] of this.pads)
            if (!(ev.activeGamepadMask & (1 << i)) && i !== ev.controllerNumber && pad.phase !== "detaching") this.detach(i);
          const pad = this.ensure(ev.controllerNumber);
          if (pad.phase === "failed") {
            this.counters.dropped++;
            break;
          }
          if (pad.pending) this.coalesced++;
          pad.pending = moonlightToGamepad(ev);
          this.pump(ev.controllerNumber, pad);
          break;
        }
        default:
          this.counters.unsupported[ev.kind] = (this.counters.unsupported[ev.kind] ?? 0) + 1;
      }
    }
  }

  flush(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async releaseAll(): Promise<void> {
    for (const [i, pad] of this.pads) {
      if (pad.phase === "failed" || pad.phase === "detaching") continue;
      pad.pending = neutralState(i);
      this.pump(i, pad);
    }
    await this.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return this.flush();
    await this.releaseAll();
    this.closed = true;
    for (const [i, pad] of this.pads) if (pad.phase !== "failed" && pad.phase !== "detaching") this.detach(i);
    await this.flush();
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  stats(): InputBackendStats {
    return { ...this.counters, unsupported: { ...this.counters.unsupported } };
  }

  /** Detaches every pad whose bit is not in `mask` (a client's active pads). */
  retain(mask: number): void {
    for (const [i, pad] of this.pads) if (!(mask & (1 << i)) && pad.phase !== "detaching") this.detach(i);
  }

  /** Pads attached in the guest (indices). */
  attached(): number[] {
    return [...this.pads].filter(([, p]) => p.phase === "attached").map(([i]) => i);
  }

  private ensure(index: number): Pad {
    let pad = this.pads.get(index);
    if (pad && pad.phase !== "detaching" && !(pad.phase === "failed" && Date.now() - (pad.failedAt ?? 0) >= RETRY_ATTACH_MS)) return pad;
    if (index < 0 || index >= MAX_GAMEPADS) throw new RangeError(`gamepad index ${index} out of range`);
    const created: Pad = { phase: "attaching", pending: null, busy: true, last: neutralState(index) };
    this.pads.set(index, created);
    this.attachOp(index, created);
    return created;
  }

  /** Requests for one index are chained: a detach of the same index still running goes out first. */
  private attachOp(index: number, pad: Pad): void {
    pad.busy = true;
    this.op(index, async () => {
      try {
        await this.opts.link.request("gamepad_attach", { index, kind: "xbox" });
        if (pad.phase === "attaching") pad.phase = "attached";
        this.counters.connects++;
      } catch (err) {
        if (pad.phase === "attaching") {
          pad.phase = "failed";
          pad.failedAt = Date.now();
          pad.pending = null;
        }
        this.opts.log.warn("gamepad not attached in the guest: its input is dropped", { index, error: describeError(err) });
      } finally {
        pad.busy = false;
      }
      this.pump(index, pad);
    });
  }

  private detach(index: number): void {
    const pad = this.pads.get(index);
    if (!pad) return;
    pad.phase = "detaching";
    pad.pending = null;
    this.op(index, async () => {
      try {
        await this.opts.link.request("gamepad_detach", { index });
      } catch (err) {
        this.opts.log.warn("gamepad detach failed", { index, error: describeError(err) });
      }
      if (this.pads.get(index) === pad) this.pads.delete(index);
    });
  }

  private pump(index: number, pad: Pad): void {
    if (pad.busy || pad.phase !== "attached" || !pad.pending) return;
    const state = pad.pending;
    pad.pending = null;
    pad.busy = true;
    this.op(index, async () => {
      let lost = false;
      try {
        await this.opts.link.request("gamepad_state", { ...state });
        pad.last = state;
        this.counters.delivered++;
        this.counters.batches++;
      } catch (err) {
        this.counters.refusedBatches++;
        this.opts.log.debug("gamepad state refused", { index, error: describeError(err) });
        lost = notAttached(err) && pad.phase === "attached" && Date.now() - (pad.reattachedAt ?? 0) >= REATTACH_MIN_INTERVAL_MS;
      }
      pad.busy = false;
      if (lost) {
        // The guest lost the pad (its agent restarted, or the connection was re-established): attach again.
        pad.phase = "attaching";
        pad.reattachedAt = Date.now();
        pad.pending ??= state;
        this.attachOp(index, pad);
      } else this.pump(index, pad);
    });
  }

  /** Runs `fn` after every earlier request of pad `index` (per-pad order: attach, states, detach). */
  private op(index: number, fn: () => Promise<void>): void {
    this.pendingOps++;
    const run = async () => {
      try {
        await fn();
      } catch (err) {
        this.opts.log.error("gamepad request failed", { index, error: describeError(err) });
      } finally {
        this.pendingOps--;
        if (this.idle()) for (const w of this.idleWaiters.splice(0)) w();
      }
    };
    const next = (this.tails.get(index) ?? Promise.resolve()).then(run);
    this.tails.set(index, next);
    void next.then(() => {
      if (this.tails.get(index) === next) this.tails.delete(index);
    });
  }

  private idle(): boolean {
    if (this.pendingOps > 0) return false;
    for (const p of this.pads.values()) if (p.busy || (p.pending && p.phase === "attached")) return false;
    return true;
  }
}
