import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { VmCreateResult, VmDetails, VmList, VmNameParams, VmSpecInput, VmStopBody, VmStopResult } from "./model.ts";
import type { VmService } from "./service.ts";

const DeleteQuery = z.strictObject({ deleteDisk: z.enum(["true", "false"]).optional() });
const errors = { 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 502: ErrorBody, 503: ErrorBody };

export const vmRoutes = (vms: VmService) =>
  new Elysia({ name: "neuron.vms", prefix: "/vms", detail: { tags: ["vms"] } })
    .get("/", async () => ({ vms: await vms.list() }), {
      response: { 200: VmList, 502: ErrorBody, 503: ErrorBody },
      detail: { summary: "List libvirt's VMs with their state" },
    })
    .post(
      "/",
      async ({ body, set }) => {
        const created = await vms.create(body, "api");
        set.status = 201;
        return created;
      },
      {
        body: VmSpecInput,
        response: { 201: VmCreateResult, ...errors, 501: ErrorBody },
        detail: { summary: "Define a VM from a spec", description: "Creates the disk (qcow2) and the IVSHMEM file, then defines the domain; all or nothing." },
      },
    )
    .post("/xml", ({ body }) => ({ xml: vms.plan(body).xml }), {
      body: VmSpecInput,
      response: { 200: z.object({ xml: z.string() }), 422: ErrorBody, 501: ErrorBody },
      detail: { summary: "Preview the libvirt XML of a spec without defining it" },
    })
    .get("/:name", ({ params }) => vms.show(params.name), {
      params: VmNameParams,
      response: { 200: VmDetails, ...errors },
      detail: { summary: "One VM: state, channels (agent socket), shared memory, devices" },
    })
    .post("/:name/start", ({ params }) => vms.start(params.name, "api"), {
      params: VmNameParams,
      response: { 200: VmDetails, ...errors },
      detail: { summary: "Start a VM", description: "A VM that fails to start answers 409 VM_START_FAILED with libvirt's reason." },
    })
    .post("/:name/stop", ({ params, body }) => vms.stop(params.name, body ?? {}, "api"), {
      params: VmNameParams,
      body: VmStopBody.optional(),
      response: { 200: VmStopResult, ...errors },
      detail: { summary: "Shut a VM down (ACPI, then destroy after timeoutSeconds)" },
    })
    .post("/:name/destroy", ({ params }) => vms.stop(params.name, { force: true }, "api"), {
      params: VmNameParams,
      response: { 200: VmStopResult, ...errors },
      detail: { summary: "Pull the plug on a VM" },
    })
    .delete(
      "/:name",
      async ({ params, query, set }) => {
        await vms.remove(params.name, { deleteDisk: query.deleteDisk === "true" }, "api");
        set.status = 204;
        return undefined;
      },
      {
        params: VmNameParams,
        query: DeleteQuery,
        response: { 204: z.undefined(), ...errors },
        detail: { summary: "Undefine a VM (with its NVRAM and TPM state; its disk when deleteDisk=true)" },
      },
    );
