import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { App, AppCreate, AppIdParams, AppList, AppPatch, BoxArtUpload } from "./model.ts";
import type { AppsService } from "./service.ts";

export const appsRoutes = (apps: AppsService) =>
  new Elysia({ name: "neuron.apps", prefix: "/apps", detail: { tags: ["apps"] } })
    .get("/", () => ({ apps: apps.list() }), {
      response: { 200: AppList },
      detail: { summary: "List the app catalog", description: "Ordered by sortOrder, then id." },
    })
    .post(
      "/",
      ({ body, set }) => {
        set.status = 201;
        return apps.create(body);
      },
      {
        body: AppCreate,
        response: { 201: App, 409: ErrorBody, 422: ErrorBody },
        detail: { summary: "Add an app" },
      },
    )
    .get("/:id", ({ params }) => apps.get(params.id), {
      params: AppIdParams,
      response: { 200: App, 404: ErrorBody },
      detail: { summary: "Get one app" },
    })
    .patch("/:id", ({ params, body }) => apps.update(params.id, body), {
      params: AppIdParams,
      body: AppPatch,
      response: { 200: App, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody },
      detail: { summary: "Change an app" },
    })
    .put("/:id/boxart", ({ params, body }) => apps.setBoxArt(params.id, Buffer.from(body.pngBase64, "base64")), {
      params: AppIdParams,
      body: BoxArtUpload,
      response: { 200: App, 404: ErrorBody, 422: ErrorBody, 503: ErrorBody },
      detail: { summary: "Upload an app's box art", description: "A PNG of at most 512 KiB, base64 in JSON; kept in the state dir and served to Moonlight clients as the app's image." },
    })
    .delete(
      "/:id",
      ({ params, set }) => {
        apps.remove(params.id);
        set.status = 204;
        return undefined;
      },
      {
        params: AppIdParams,
        response: { 204: z.undefined(), 404: ErrorBody },
        detail: { summary: "Remove an app" },
      },
    );
