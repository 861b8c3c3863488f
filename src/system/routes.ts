import { Elysia } from "elysia";
import { Health, SystemInfo } from "./model.ts";
import type { SystemService } from "./service.ts";

export const systemRoutes = (system: SystemService) =>
  new Elysia({ name: "neuron.system", detail: { tags: ["system"] } })
    .get("/health", () => system.health(), {
      response: { 200: Health },
      detail: { summary: "Liveness", description: "200 while the service runs. Needs no credentials.", security: [] },
    })
    .get("/system", () => system.info(), {
      response: { 200: SystemInfo },
      detail: { summary: "Version, uptime, native library, schema version and the doctor report" },
    });
