import { Elysia } from "elysia";
import { ErrorBody } from "../api/errors.ts";
import { HardwareReport } from "./model.ts";
import type { HardwareService } from "./service.ts";

export const hardwareRoutes = (hardware: HardwareService) =>
  new Elysia({ name: "neuron.hardware", detail: { tags: ["hardware"] } }).get("/hardware", () => hardware.detect(), {
    response: { 200: HardwareReport, 422: ErrorBody },
    detail: {
      summary: "Detect the machine and judge it for GPU passthrough",
      description: "CPU, IOMMU state, IOMMU groups, PCI devices and GPUs (host GPU, passthrough candidates, group cleanliness, reset bug), each verdict with its reason.",
    },
  });
