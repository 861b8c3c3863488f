import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { AgentCommandParams, AgentCommandResult, AgentStatusBody, VmNameParams } from "./model.ts";
import type { GuestService } from "./service.ts";

/** Command payloads are validated per command by the service (one schema per command). */
const AnyBody = z.record(z.string(), z.unknown()).optional();

export const guestRoutes = (guest: GuestService) =>
  new Elysia({ name: "neuron.guest", detail: { tags: ["guest"] } })
    .get("/vms/:name/agent", ({ params }) => guest.status(params.name), {
      params: VmNameParams,
      response: { 200: AgentStatusBody, 404: ErrorBody, 422: ErrorBody, 502: ErrorBody, 503: ErrorBody },
      detail: {
        summary: "Guest agent status of a VM",
        description: "Connects on first use (sockets from the VM's libvirt definition), then reports connection, guest info and the QEMU guest agent.",
      },
    })
    .post("/vms/:name/agent/:command", ({ params, body }) => guest.command(params.name, params.command, body ?? {}), {
      params: AgentCommandParams,
      body: AnyBody,
      response: { 200: AgentCommandResult, 404: ErrorBody, 422: ErrorBody, 501: ErrorBody, 502: ErrorBody, 503: ErrorBody, 504: ErrorBody },
      detail: {
        summary: "Run a guest agent command",
        description:
          "ping, get_info, set_resolution {width,height,display?}, launch_app {path,args?,cwd?}, clipboard_get, clipboard_set {mime,text|data}, screenshot, shutdown {mode}. ping/get_info/shutdown fall back to the QEMU guest agent.",
      },
    });
