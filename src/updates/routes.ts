import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { CheckReport, RollbackRequest, UpdateIdParams, UpdateList, UpdateStart, UpdateStarted, UpdateView, type UpdateEvent } from "./model.ts";
import type { UpdateRuns } from "./runs.ts";
import type { UpdatesService } from "./service.ts";

/** Server-sent events: one `event: <type>` + `data: <json>` per update event. */
function sse(events: AsyncGenerator<UpdateEvent>, fallback: () => UpdateView): Response {
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(ctl) {
      let sawDone = false;
      for await (const e of events) {
        if (e.type === "done") sawDone = true;
        ctl.enqueue(enc.encode(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
      }
      if (!sawDone) ctl.enqueue(enc.encode(`event: done\ndata: ${JSON.stringify({ type: "done", update: fallback() })}\n\n`));
      ctl.close();
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-store" } });
}

export const updatesRoutes = (updates: UpdatesService, runs: UpdateRuns) =>
  new Elysia({ name: "neuron.updates", prefix: "/updates", detail: { tags: ["updates"] } })
    .get("/", () => ({ updates: updates.history() }), {
      response: { 200: UpdateList },
      detail: { summary: "Update history, newest first" },
    })
    .post(
      "/",
      async ({ body, set }) => {
        const id = await runs.start({ checks: body.checks, reboot: body.reboot });
        set.status = 202;
        return { id, events: `/api/v1/updates/${id}/events` };
      },
      {
        body: UpdateStart,
        response: { 202: UpdateStarted, 409: ErrorBody, 422: ErrorBody },
        detail: {
          summary: "Start a system update",
          description: "Pre snapshot, one `pacman -Syu`, post snapshot, health checks; a failed required check rolls back. Answers once the pre snapshot is being taken; follow /updates/{id}/events (SSE). Refused (409) while another pacman runs, with a stale lock, or below the free-space floor; 422 where the root cannot take snapshots.",
        },
      },
    )
    .get("/checks", async () => {
      const checks = await updates.check();
      return { root: updates.root, checks, healthy: !checks.some((c) => c.required && c.status === "failed"), recovered: [] };
    }, {
      response: { 200: CheckReport },
      detail: { summary: "Run the health checks now", description: "Required and wanted checks of the system root; changes nothing (an interrupted update is recovered when the service starts)." },
    })
    .get("/:id", ({ params }) => updates.show(params.id), {
      params: UpdateIdParams,
      response: { 200: UpdateView, 404: ErrorBody },
      detail: { summary: "One update: packages, snapshots, checks, what happened, its log" },
    })
    .get("/:id/events", ({ params, request }) => {
      const view = updates.show(params.id);
      const live = runs.has(params.id) ? runs.events(params.id, request.signal) : (async function* () {})();
      return sse(live, () => updates.show(view.id));
    }, {
      params: UpdateIdParams,
      response: { 200: z.string(), 404: ErrorBody },
      detail: { summary: "Progress of an update (text/event-stream)", description: "Events phase, output (pacman's lines), progress ({ total, done, action, pkg } parsed from pacman), check, and a final done with the update." },
    })
    .post("/:id/rollback", ({ params, body }) => updates.rollback(params.id, { reboot: body.reboot }), {
      params: UpdateIdParams,
      body: RollbackRequest,
      response: { 200: UpdateView, 404: ErrorBody, 409: ErrorBody },
      detail: { summary: "Roll back to the update's pre snapshot", description: "The next boot mounts a writable copy of it; its /boot files are restored; a reboot is scheduled unless reboot is false." },
    });
