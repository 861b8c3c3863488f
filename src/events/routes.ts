/**
 * GET /api/v1/events: the event bus as server-sent events. Each event goes out as
 * `id: <n>`, `event: <type>`, `data: <json>`; a client that reconnects with `Last-Event-ID` (the
 * browser's EventSource does so by itself) first gets every kept event after that id. When the
 * id is older than what the bus still keeps, a `reset` event says so: the client reloads its view.
 * A comment line every few seconds keeps idle connections (and proxies) open.
 */
import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import type { ApplianceEvent, EventBus } from "./bus.ts";

export const HEARTBEAT_MS = 5000;

const EventsQuery = z.object({
  /** Only events whose type starts with one of these comma-separated prefixes ("vm.,pairing."). */
  types: z.string().max(512).regex(/^[a-z0-9._,-]*$/, "comma-separated type prefixes (a-z, 0-9, '.', '_', '-')").optional(),
  /** The last id seen, for clients that cannot send the Last-Event-ID header. */
  lastEventId: z.coerce.number().int().min(0).optional(),
  /** "message": frames carry no `event:` line, so an EventSource hears every type in onmessage (the type is in the data). */
  as: z.enum(["typed", "message"]).default("typed"),
});

function frame(e: ApplianceEvent, typed: boolean): string {
  return `id: ${e.id}\n${typed ? `event: ${e.type}\n` : ""}data: ${JSON.stringify({ id: e.id, type: e.type, at: e.at, data: e.data })}\n\n`;
}

export function eventStream(bus: EventBus, opts: { lastId: number | null; prefixes: string[]; signal: AbortSignal; heartbeatMs?: number; typed?: boolean }): Response {
  const typed = opts.typed ?? true;
  const enc = new TextEncoder();
  const wanted = (e: ApplianceEvent) => opts.prefixes.length === 0 || opts.prefixes.some((p) => e.type.startsWith(p));
  let cleanup = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(ctl) {
      const send = (s: string) => {
        try {
          ctl.enqueue(enc.encode(s));
        } catch {
          cleanup();
        }
      };
      send(`retry: 2000\n: connected ${bus.lastId}\n\n`);
      if (opts.lastId !== null) {
        const kept = bus.since(opts.lastId);
        const oldest = kept[0]?.id ?? bus.lastId + 1;
        if (opts.lastId < bus.lastId && oldest > opts.lastId + 1)
          send(`${typed ? "event: reset\n" : ""}data: ${JSON.stringify({ id: null, type: "reset", data: { reason: "events after the last one seen are no longer kept", lastId: bus.lastId } })}\n\n`);
        for (const e of kept) if (wanted(e)) send(frame(e, typed));
      }
      const off = bus.subscribe((e) => {
        if (wanted(e)) send(frame(e, typed));
      });
      const beat = setInterval(() => send(`: ${Date.now()}\n\n`), opts.heartbeatMs ?? HEARTBEAT_MS);
      cleanup = () => {
        off();
        clearInterval(beat);
        cleanup = () => {};
      };
      opts.signal.addEventListener("abort", () => {
        cleanup();
        try {
          ctl.close();
        } catch {
          /* already closed */
        }
      });
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" } });
}

export const eventsRoutes = (bus: EventBus) =>
  new Elysia({ name: "neuron.events", detail: { tags: ["events"] } }).get(
    "/events",
    ({ request, query }) => {
      const header = request.headers.get("last-event-id");
      const fromHeader = header !== null && /^\d{1,15}$/.test(header.trim()) ? Number(header.trim()) : null;
      const lastId = fromHeader ?? query.lastEventId ?? null;
      const prefixes = (query.types ?? "").split(",").filter((p) => p.length > 0);
      return eventStream(bus, { lastId, prefixes, signal: request.signal, typed: query.as === "typed" });
    },
    {
      query: EventsQuery,
      response: { 200: z.string(), 401: ErrorBody, 422: ErrorBody },
      detail: {
        summary: "What happens, live (text/event-stream)",
        description:
          "VM state changes (vm.state), pairing requests and their outcomes (pairing.request, pairing.outcome), stream session statistics (session.stats, session.started, session.ended, session.bitrate), update progress (update.progress, update.output) and setup / migration progress (setup.*, migration.*). Reconnect with Last-Event-ID (or ?lastEventId=) to catch up on what was missed; `reset` means more was missed than is kept.",
      },
    },
  );
