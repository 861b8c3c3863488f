/**
 * Input into a VM over the management API: a batch endpoint, the sinks report, and a
 * WebSocket for continuous input (layouts in ws-codec.ts and the route descriptions).
 */
import { Elysia } from "elysia";
import { ErrorBody } from "../api/errors.ts";
import { acceptUpgrade, isUpgradeRequest, type SocketLike } from "../api/upgrade.ts";
import { callerOf } from "../auth/guard.ts";
import { callerScope } from "../auth/caller.ts";
import { AppError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { VmNameParams } from "../vm/model.ts";
import { InjectBatch, InjectResult, InputProbeResult } from "./model.ts";
import type { VmInputService } from "./vm-input.ts";
import { decodeBinary, decodeText, WsDecodeError } from "./ws-codec.ts";

const errors = { 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 502: ErrorBody, 503: ErrorBody };

const WS_DESCRIPTION = [
  "A WebSocket (GET with Upgrade: websocket, TCP listener) for continuous input. Needs admin scope;",
  "a browser session must send Origin (the guard refuses foreign origins). Text messages: JSON",
  '`{"events":[...]}` as for inject-input; binary messages: 8/16-byte little-endian records',
  "(type byte first: 0x01 key, 0x02 move, 0x03 abs, 0x04 button, 0x05 wheel, 0x06 releaseAll,",
  "0x10 gamepad, 0x11 attach, 0x12 detach, 0x13 motion, 0x20 touch, 0x21 pen). A bad message sends",
  'nothing and is answered `{"type":"error",...}`; closing releases every key and button held.',
].join(" ");

export const inputRoutes = (input: VmInputService, log: Logger) =>
  new Elysia({ name: "neuron.input", prefix: "/vms", detail: { tags: ["vms"] } })
    .post("/:name/inject-input", ({ params, body }) => input.inject(params.name, body.events), {
      params: VmNameParams,
      body: InjectBatch,
      response: { 200: InjectResult, ...errors, 429: ErrorBody },
      detail: {
        summary: "Inject a batch of input events into a running VM",
        description:
          "Keys by USB HID usage (page 7, or 12 for media keys), relative and absolute pointer (0..32767), buttons 1-5, wheel in 1/120 notches, text typed by the guest's layout, gamepads, touch and pen. The whole batch (at most 1024 events, 256 KiB of JSON) is validated first: any bad event, and a body over those bounds (INPUT_BATCH_TOO_LARGE, refused before it is read), answers 422 and nothing is sent. Applied in order.",
      },
    })
    .get("/:name/input-sinks", ({ params }) => input.probe(params.name), {
      params: VmNameParams,
      response: { 200: InputProbeResult, ...errors },
      detail: { summary: "Which device serves each input event class of a VM, why, and how native it looks (stealth 0-3)" },
    })
    .get(
      "/:name/input",
      async ({ params, request }) => {
        if (!isUpgradeRequest(request)) throw new AppError("UPGRADE_REQUIRED", "this is a WebSocket endpoint: connect with Upgrade: websocket", { status: 426 });
        const caller = callerOf(request);
        if (callerScope(caller) !== "admin") throw new AppError("READ_ONLY", "sending input into a VM needs admin scope", { status: 403 });
        // a browser always sends Origin on a WebSocket; the guard has checked it is ours
        if (caller.kind === "session" && request.headers.get("origin") === null)
          throw new AppError("ORIGIN_REQUIRED", "a browser session's WebSocket must carry an Origin header", { status: 403 });
        const { conn, hub } = await input.connect(params.name);
        const vmLog = log.child({ vm: params.name, socket: "input" });
        let unsubscribe: (() => void) | null = null;
        const fail = (ws: SocketLike, code: string, message: string, record: number) => ws.send(JSON.stringify({ type: "error", code, message, record }));
        return acceptUpgrade(request, {
          open(ws) {
            ws.send(JSON.stringify({ type: "ready", sinks: Object.fromEntries(hub.sinks().map((s) => [s.eventClass, s.sink])) }));
            unsubscribe = hub.onRumble((r) => ws.send(JSON.stringify({ type: "rumble", pad: r.controller, low: r.lowFreq, high: r.highFreq })));
          },
          message(ws, data) {
            try {
              const events = typeof data === "string" ? decodeText(data) : decodeBinary(data);
              const { ops, padMask } = input.convert(params.name, events, conn.padMask);
              conn.padMask = padMask;
              conn.apply(ops);
            } catch (err) {
              if (err instanceof WsDecodeError) fail(ws, "INPUT_INVALID", err.message, err.record);
              else if (err instanceof AppError && err.errorCode === "INPUT_BUSY") fail(ws, "INPUT_BUSY", err.message, 0);
              else if (err instanceof AppError && err.status < 500) fail(ws, "INPUT_INVALID", err.message, Number(/events\[(\d+)\]/.exec(err.message)?.[1] ?? 0));
              else {
                vmLog.warn("input message failed", { error: describeError(err) });
                fail(ws, "INTERNAL", "the input could not be sent", 0);
              }
            }
          },
          close() {
            unsubscribe?.();
            void conn.end().catch((err) => vmLog.warn("releasing held input failed", { error: describeError(err) }));
          },
        });
      },
      {
        params: VmNameParams,
        response: { 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 426: ErrorBody, 503: ErrorBody },
        detail: { summary: "WebSocket for continuous input into a VM", description: WS_DESCRIPTION },
      },
    );
