/**
 * Does the VM behind a session's shared memory still run? Decides when a VM
 * source has ended for good, and why.
 *
 * The trigger is free: the capture reader already watches the guest's LGMP
 * heartbeat (a 1 s stall detaches it and counts a restart). While frames flow,
 * or while the screen is static but the heartbeat ticks, nothing is asked.
 * Only when no frame came for `stallMs` and the reader lost the guest's
 * session since the last frame (or never had one), libvirt is asked for the
 * domain's state — at most every `checkIntervalMs`, one `virsh domstate`
 * (~20 ms) each. The heartbeat alone cannot tell "VM shut down" from "guest
 * rebooting" or "capture program not running yet"; libvirt's domain state
 * can, and it is the authority the rest of the appliance uses. A domain that
 * is shut off, crashed or gone ends the source with a reason a person can
 * read ("shut down" after frames came, "is not running" when none ever did: an
 * app launched while its VM was off); a running or paused one keeps the stream
 * waiting for the guest.
 */
import { describeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { VmState } from "../../vm/model.ts";

/** libvirt's state of a VM, or null when no such domain exists; throws when libvirt cannot tell. */
export type VmStateProbe = (vmName: string) => Promise<VmState | null>;

export interface SourceSample {
  framesIn: number;
  /** Guest sessions the reader lost (heartbeat stall, new session id). */
  restarts: number;
}

export interface VmLivenessOptions {
  vmName: string;
  probe: VmStateProbe;
  log: Logger;
  /** No frame for this long (and the guest's session lost) before libvirt is asked (default 1500 ms). */
  stallMs?: number;
  /** Least time between two questions to libvirt (default 2000 ms). */
  checkIntervalMs?: number;
  now?: () => number;
}

const ENDED: Partial<Record<VmState, string>> = {
  "shut off": "shut down",
  shutdown: "shut down",
  crashed: "crashed",
};

export class VmLiveness {
  private lastFrames = -1;
  private lastFrameAt: number;
  private restartsAtFrame = 0;
  private lastCheckAt = -Infinity;
  private inFlight = false;
  private probeErrorLogged = false;
  private ended: string | null = null;
  /** Questions asked to libvirt so far. */
  probes = 0;
  private readonly now: () => number;
  private readonly stallMs: number;
  private readonly checkIntervalMs: number;

  constructor(private readonly o: VmLivenessOptions) {
    this.now = o.now ?? Date.now;
    this.lastFrameAt = this.now();
    this.stallMs = o.stallMs ?? 1500;
    this.checkIntervalMs = o.checkIntervalMs ?? 2000;
  }

  /** Why the source ended ("VM win11 shut down"), once it has; null while it lives. */
  get endReason(): string | null {
    return this.ended;
  }

  /**
   * Feeds one sample of the pipeline's counters; may start a (single) question
   * to libvirt. Resolves with the end reason when this sample's question found
   * the VM gone, otherwise null.
   */
  async sample(s: SourceSample): Promise<string | null> {
    if (this.ended) return this.ended;
    const now = this.now();
    if (s.framesIn !== this.lastFrames) {
      this.lastFrames = s.framesIn;
      this.lastFrameAt = now;
      this.restartsAtFrame = s.restarts;
      if (s.framesIn > 0) return null;
    }
    const lostGuest = s.framesIn === 0 || s.restarts > this.restartsAtFrame;
    if (!lostGuest || now - this.lastFrameAt < this.stallMs) return null;
    if (this.inFlight || now - this.lastCheckAt < this.checkIntervalMs) return null;
    this.inFlight = true;
    this.lastCheckAt = now;
    this.probes++;
    try {
      const state = await this.o.probe(this.o.vmName);
      this.probeErrorLogged = false;
      if (state === null) this.ended = `VM ${this.o.vmName} no longer exists`;
      else if (state === "shut off" && this.lastFrames <= 0) this.ended = `VM ${this.o.vmName} is not running`;
      else if (ENDED[state]) this.ended = `VM ${this.o.vmName} ${ENDED[state]}`;
      else this.o.log.debug("no frames from the VM, but it is still up: waiting for the guest", { vm: this.o.vmName, state });
      return this.ended;
    } catch (err) {
      if (!this.probeErrorLogged) this.o.log.warn("cannot ask libvirt whether the VM still runs; the stream waits", { vm: this.o.vmName, error: describeError(err) });
      this.probeErrorLogged = true;
      return null;
    } finally {
      this.inFlight = false;
    }
  }
}
