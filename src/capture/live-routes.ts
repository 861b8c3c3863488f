/**
 * GET /vms/{name}/live: a running VM's screen as H.264 over a WebSocket (TCP listener). The
 * upgrade passes the auth guard like every request; the route then wants a caller that may read
 * and, for a browser session, an Origin header (the guard has checked it is ours). Refusals (VM
 * not running, no shared memory, too many views) are plain HTTP answers before any upgrade; a
 * plain GET without Upgrade gets the same refusal, or 426 when a WebSocket would be accepted.
 *
 * Messages from the appliance:
 *   text    {"type":"ready","codec":"h264","fps":N,"bitrateKbps":N}, once, first;
 *           {"type":"end","reason":"..."} before the appliance closes the socket (the VM
 *           stopped: after a few seconds without frames its state is checked);
 *   binary  one access unit each: u8 flags (bit 0: IDR), u16 width, u16 height (big endian),
 *           then the Annex B access unit (SPS and PPS in front of every IDR).
 * A viewer that reads too slowly loses delta frames, never a part of one: the appliance skips
 * frames while more than LIVE_MAX_BUFFERED bytes wait to be sent, then resumes at an IDR it asks
 * for. Messages from the viewer are ignored (input goes through inject-input or /input).
 */
import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { acceptUpgrade, isUpgradeRequest, type SocketLike } from "../api/upgrade.ts";
import { callerScope } from "../auth/caller.ts";
import { callerOf } from "../auth/guard.ts";
import { AppError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { VmNameParams } from "../vm/model.ts";
import type { LiveUnit, LiveViewService } from "./live.ts";

export const LiveQuery = z.object({
  fps: z.coerce.number().int().min(1).max(60).default(30),
  bitrateKbps: z.coerce.number().int().min(200).max(50_000).default(4000),
});

/** Bytes queued for a viewer above which delta frames are skipped. */
export const LIVE_MAX_BUFFERED = 2 << 20;

/**
 * What a slow viewer gets: while more than `maxBuffered` bytes wait for it, every frame is
 * skipped; once the queue is short again, delta frames are still skipped (a decoder cannot use a
 * delta after a gap) and the encoder is asked for an IDR, once; sending resumes with that IDR. An
 * IDR skipped because the queue filled again means asking again after the next drain.
 */
export class SlowViewerPolicy {
  skipped = 0;
  private skipping = false;
  private asked = false;
  constructor(private readonly maxBuffered = LIVE_MAX_BUFFERED) {}

  decide(idr: boolean, queued: number): { send: boolean; requestIdr: boolean } {
    if (queued > this.maxBuffered) {
      this.skipping = true;
      this.skipped++;
      if (idr) this.asked = false;
      return { send: false, requestIdr: false };
    }
    if (this.skipping && !idr) {
      this.skipped++;
      const requestIdr = !this.asked;
      this.asked = true;
      return { send: false, requestIdr };
    }
    this.skipping = false;
    this.asked = false;
    return { send: true, requestIdr: false };
  }
}

/** The binary message of one access unit (header layout above). */
export function liveMessage(u: LiveUnit): Uint8Array {
  const out = new Uint8Array(5 + u.data.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, u.idr ? 1 : 0);
  v.setUint16(1, u.width);
  v.setUint16(3, u.height);
  out.set(u.data, 5);
  return out;
}

const DESCRIPTION = [
  "A WebSocket (GET with Upgrade: websocket, TCP listener). Needs a caller that may read; a browser session must send Origin.",
  'First a text message {"type":"ready","codec":"h264","fps":N,"bitrateKbps":N}; then one binary message per access unit:',
  "u8 flags (bit 0 IDR), u16 width, u16 height (big endian), then the Annex B access unit. The console decodes them with WebCodecs.",
  "A slow viewer skips delta frames and resumes at an IDR. 409 when the VM is not running or has no shared memory, 503 when too many views are open.",
].join(" ");

export const liveRoutes = (live: LiveViewService, log: Logger) =>
  new Elysia({ name: "neuron.live", detail: { tags: ["vms"] } }).get(
    "/vms/:name/live",
    async ({ params, query, request }) => {
      const caller = callerOf(request);
      if (callerScope(caller) === "none") throw new AppError("FORBIDDEN", "watching a VM needs a caller that may read", { status: 403 });
      if (!isUpgradeRequest(request)) {
        // a plain GET says why a WebSocket would be refused (a page's WebSocket never sees the answer)
        await live.check(params.name);
        throw new AppError("UPGRADE_REQUIRED", "this is a WebSocket endpoint: connect with Upgrade: websocket", { status: 426 });
      }
      // a browser always sends Origin on a WebSocket; the guard has checked it is ours
      if (caller.kind === "session" && request.headers.get("origin") === null)
        throw new AppError("ORIGIN_REQUIRED", "a browser session's WebSocket must carry an Origin header", { status: 403 });
      const view = await live.open(params.name, query);
      const vmLog = log.child({ vm: params.name, socket: "live" });
      const stop = new AbortController();
      const pump = async (ws: SocketLike) => {
        const pace = new SlowViewerPolicy();
        for await (const u of view.units(stop.signal)) {
          const d = pace.decide(u.idr, ws.getBufferedAmount?.() ?? 0);
          if (d.requestIdr) view.requestIdr();
          if (!d.send) continue;
          if (ws.send(liveMessage(u)) === 0) return stop.abort(); // the socket is gone
        }
        if (pace.skipped) vmLog.info("live view: frames skipped for a slow viewer", { skipped: pace.skipped });
      };
      return acceptUpgrade(request, {
        open(ws) {
          ws.send(JSON.stringify({ type: "ready", codec: "h264", fps: query.fps, bitrateKbps: query.bitrateKbps }));
          void pump(ws)
            .then(() => {
              if (stop.signal.aborted) return;
              ws.send(JSON.stringify({ type: "end", reason: view.endReason ?? "the VM's frames ended" }));
              ws.close(1000, "ended");
            })
            .catch((err: unknown) => {
              vmLog.warn("live view failed", { error: describeError(err) });
              if (stop.signal.aborted) return;
              ws.send(JSON.stringify({ type: "end", reason: "the live view failed on the appliance" }));
              ws.close(1011, "failed");
            });
        },
        message() {
          /* nothing is read from the viewer */
        },
        close() {
          stop.abort();
          view.release();
        },
      });
    },
    {
      params: VmNameParams,
      query: LiveQuery,
      response: { 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 426: ErrorBody, 503: ErrorBody },
      detail: { summary: "A running VM's screen as H.264, live (a WebSocket)", description: DESCRIPTION },
    },
  );
