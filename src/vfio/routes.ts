import { Elysia } from "elysia";
import { ErrorBody } from "../api/errors.ts";
import {
  VfioApplyRequest,
  VfioApplyResult,
  VfioPlan,
  VfioPlanQuery,
  VfioRollbackRequest,
  VfioRollbackResult,
  VfioVerifyQuery,
  VfioVerifyReport,
} from "./model.ts";
import type { VfioService } from "./service.ts";

const errors = { 404: ErrorBody, 409: ErrorBody, 422: ErrorBody };

export const vfioRoutes = (vfio: VfioService) =>
  new Elysia({ name: "neuron.vfio", prefix: "/vfio", detail: { tags: ["vfio"] } })
    .get("/plan", ({ query }) => vfio.plan({ gpu: query.gpu, acsOverride: query.acsOverride }), {
      query: VfioPlanQuery,
      response: { 200: VfioPlan, ...errors },
      detail: { summary: "Plan the VFIO configuration for a GPU", description: "A unified diff of every file that would change, and the regeneration commands; nothing is written." },
    })
    .post("/apply", ({ body }) => vfio.apply(body, "api"), {
      body: VfioApplyRequest,
      response: { 200: VfioApplyResult, ...errors, 500: ErrorBody },
      detail: { summary: "Write the VFIO configuration", description: "Atomic writes with backups, recorded in the audit log; applying twice changes nothing the second time." },
    })
    .post("/rollback", ({ body }) => vfio.rollback(body.id, "api"), {
      body: VfioRollbackRequest,
      response: { 200: VfioRollbackResult, ...errors },
      detail: { summary: "Restore the files of a VFIO apply (default: the latest)", description: "Refused when a file changed after the apply." },
    })
    .get("/verify", ({ query }) => vfio.verify(query.gpu), {
      query: VfioVerifyQuery,
      response: { 200: VfioVerifyReport, 404: ErrorBody, 422: ErrorBody },
      detail: { summary: "Check that the GPU is bound to vfio-pci after the reboot" },
    });
