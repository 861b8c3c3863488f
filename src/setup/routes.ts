import { Elysia } from "elysia";
import { ErrorBody } from "../api/errors.ts";
import { SetupAdvanceRequest, SetupOptionsPatch, SetupResetRequest, SetupRetryRequest, SetupStatus, SetupStepParams } from "./model.ts";
import type { SetupService } from "./service.ts";

export const setupRoutes = (setup: SetupService) =>
  new Elysia({ name: "neuron.setup", prefix: "/setup", detail: { tags: ["setup"] } })
    .get("/", () => setup.status(), {
      response: { 200: SetupStatus },
      detail: { summary: "Every step of the setup flow and its state", description: "The steps in order, each with its state, plain-words detail and advice, and its result." },
    })
    .post("/options", ({ body }) => setup.setOptions(body), {
      body: SetupOptionsPatch,
      response: { 200: SetupStatus, 409: ErrorBody, 422: ErrorBody },
      detail: { summary: "Set the setup choices (GPU, VM, install media, account)", description: "null clears a choice; a choice a finished step used is locked until the flow is reset from that step." },
    })
    .post(
      "/advance",
      async ({ body, set }) => {
        if (body.wait === false) {
          const st = setup.advanceInBackground(body);
          set.status = 202;
          return st;
        }
        return setup.advance(body);
      },
      {
        body: SetupAdvanceRequest,
        response: { 200: SetupStatus, 202: SetupStatus, 409: ErrorBody, 422: ErrorBody },
        detail: { summary: "Run the flow until a step waits, fails, or all are done", description: "confirm: true lets the VFIO apply step write the planned changes. Progress: setup.step events." },
      },
    )
    .post(
      "/steps/:id/retry",
      async ({ params, body, set }) => {
        const r = await setup.retry(params.id, body);
        if (body.wait === false) set.status = 202;
        return r;
      },
      {
        params: SetupStepParams,
        body: SetupRetryRequest,
        response: { 200: SetupStatus, 202: SetupStatus, 409: ErrorBody, 422: ErrorBody },
        detail: { summary: "Run one step again (failed, waiting or done) and continue from it" },
      },
    )
    .post("/reset", ({ body }) => setup.reset(body), {
      body: SetupResetRequest,
      response: { 200: SetupStatus, 409: ErrorBody, 422: ErrorBody },
      detail: { summary: "Mark the steps from one on as pending again", description: "Host changes are not undone: POST /vfio/rollback restores the VFIO files." },
    });
