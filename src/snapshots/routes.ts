import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { SnapshotCreate, SnapshotDiff, SnapshotDiffQuery, SnapshotIdParams, SnapshotList, SnapshotView } from "./model.ts";
import type { SnapshotService } from "./service.ts";

export const snapshotsRoutes = (snapshots: SnapshotService, root: string) =>
  new Elysia({ name: "neuron.snapshots", prefix: "/snapshots", detail: { tags: ["updates"] } })
    .get(
      "/",
      async () => {
        const backend = await snapshots.backend(root).then((b) => b.name, () => null);
        return { backend, snapshots: snapshots.list(root).map((r) => snapshots.view(r)) };
      },
      { response: { 200: SnapshotList }, detail: { summary: "Snapshots of the system root (pre/post pairs, manual, rollback)" } },
    )
    .post(
      "/",
      async ({ body, set }) => {
        const row = await snapshots.create(root, { kind: "manual", description: body.description });
        set.status = 201;
        return snapshots.view(row);
      },
      { body: SnapshotCreate, response: { 201: SnapshotView, 422: ErrorBody }, detail: { summary: "Take a manual snapshot of the root (and its /boot files)" } },
    )
    .get("/diff", ({ query }) => snapshots.diff(query.from, query.to), {
      query: SnapshotDiffQuery,
      response: { 200: SnapshotDiff, 404: ErrorBody },
      detail: { summary: "Files changed between two snapshots" },
    })
    .get("/:id", ({ params }) => snapshots.view(snapshots.get(params.id)), {
      params: SnapshotIdParams,
      response: { 200: SnapshotView, 404: ErrorBody },
      detail: { summary: "One snapshot" },
    })
    .delete(
      "/:id",
      async ({ params, set }) => {
        await snapshots.delete(params.id);
        set.status = 204;
        return undefined;
      },
      { params: SnapshotIdParams, response: { 204: z.undefined(), 404: ErrorBody, 409: ErrorBody }, detail: { summary: "Delete a snapshot (not the one the next boot mounts)" } },
    );
