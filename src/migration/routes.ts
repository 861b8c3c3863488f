import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import type { ApplianceEvent, EventBus } from "../events/bus.ts";
import { InspectRequest, InspectResult, LivePlanRequest, MigrationIdParams, MigrationList, Plan, PlanRequest, Report, RunRequest, RunStarted, UndoResult } from "./model.ts";
import type { MigrationService } from "./service.ts";

const ENDED = new Set(["done", "interrupted", "failed", "undone"]);

/** Server-sent events of one migration: progress, state, and a final done with the report. */
function sse(svc: MigrationService, events: EventBus, id: number, signal: AbortSignal): Response {
  const enc = new TextEncoder();
  let unsubscribe = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(ctl) {
      let closed = false;
      const send = (type: string, data: unknown) => {
        if (!closed) ctl.enqueue(enc.encode(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`));
      };
      const finish = () => {
        if (closed) return;
        let report: unknown = null;
        try {
          report = svc.report(id);
        } catch {
          report = { id, status: svc.view(id).status };
        }
        send("done", report);
        closed = true;
        unsubscribe();
        ctl.close();
      };
      const onEvent = (e: ApplianceEvent) => {
        const d = e.data as { id?: number; status?: string };
        if (d?.id !== id) return;
        if (e.type === "migration.progress") send("progress", e.data);
        else if (e.type === "migration.state") {
          send("state", e.data);
          if (d.status && ENDED.has(d.status)) finish();
        }
      };
      unsubscribe = events.subscribe(onEvent);
      signal.addEventListener("abort", () => {
        closed = true;
        unsubscribe();
        try {
          ctl.close();
        } catch {
          // already closed
        }
      });
      if (!svc.isRunning(id)) finish();
    },
    cancel() {
      unsubscribe();
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-store" } });
}

export const migrationRoutes = (svc: MigrationService, events: EventBus) =>
  new Elysia({ name: "neuron.migrations", prefix: "/migrations", detail: { tags: ["migrations"] } })
    .get("/", () => ({ migrations: svc.list() }), { response: { 200: MigrationList }, detail: { summary: "Migrations, newest first" } })
    .post(
      "/",
      async ({ body, set }) => {
        const plan = await svc.planFromVm(body);
        set.status = 201;
        return plan;
      },
      {
        body: LivePlanRequest,
        response: { 201: Plan, 409: ErrorBody, 422: ErrorBody, 500: ErrorBody, 501: ErrorBody, 502: ErrorBody, 503: ErrorBody, 504: ErrorBody },
        detail: {
          summary: "Plan a migration from a running VM (the live path)",
          description: "fromVm: the VM whose guest agent serves the profile(s). Its files are pulled through the agent channel into the state dir first (1 MiB chunks, each checksummed, each file against its whole-file hash; a pull that was cut resumes, unchanged files are not fetched again), then planned like a folder source; answers with the saved plan once the pull is done. Run it with /migrations/{id}/run.",
        },
      },
    )
    .post("/inspect", ({ body }) => svc.inspect(body.source, body.recoveryKey), {
      body: InspectRequest,
      response: { 200: InspectResult, 422: ErrorBody, 500: ErrorBody },
      detail: { summary: "Look at a source: mount it read-only, report its state and profiles, unmount", description: "A directory, a disk image or a partition. BitLocker needs recoveryKey; hibernated, Fast Startup and dirty volumes are reported with the safe way out." },
    })
    .post(
      "/plan",
      async ({ body, set }) => {
        const plan = await svc.plan(body);
        set.status = 201;
        return plan;
      },
      {
        body: PlanRequest,
        response: { 201: Plan, 409: ErrorBody, 422: ErrorBody, 500: ErrorBody },
        detail: { summary: "Plan a migration (saved)", description: "Every item with size, category, target, conflicts and fidelity (exact, translated, reinstall, cannot and why), totals and a time estimate. Nothing is written." },
      },
    )
    .get("/:id", ({ params }) => svc.view(params.id), { params: MigrationIdParams, response: { 200: Plan, 404: ErrorBody }, detail: { summary: "One migration: its plan and status" } })
    .post(
      "/:id/run",
      async ({ params, body, set }) => {
        await svc.start(params.id, body);
        set.status = 202;
        return { id: params.id, events: `/api/v1/migrations/${params.id}/events` };
      },
      {
        params: MigrationIdParams,
        body: RunRequest,
        response: { 202: RunStarted, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 500: ErrorBody },
        detail: { summary: "Run (or resume) a planned migration", description: "Answers once the source is mounted and passed its checks; follow /migrations/{id}/events (SSE). Refused (409) for a hibernated/dirty source unless acceptUnsafeSource, or while it runs." },
      },
    )
    .get("/:id/events", ({ params, request }) => {
      svc.view(params.id);
      return sse(svc, events, params.id, request.signal);
    }, {
      params: MigrationIdParams,
      response: { 200: z.string(), 404: ErrorBody },
      detail: { summary: "Progress of a run (text/event-stream)", description: "Events progress (bytes, files, ETA), state, and a final done with the report." },
    })
    .get("/:id/report", ({ params }) => svc.report(params.id), { params: MigrationIdParams, response: { 200: Report, 404: ErrorBody }, detail: { summary: "The report of a run (also in words)" } })
    .post("/:id/undo", ({ params }) => svc.undo(params.id), {
      params: MigrationIdParams,
      response: { 200: UndoResult, 404: ErrorBody, 409: ErrorBody },
      detail: { summary: "Undo a run", description: "Removes exactly what the run created, each file only while its checksum matches; changed or missing files are kept and listed in refused." },
    });
