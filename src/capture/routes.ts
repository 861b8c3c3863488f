import { Elysia } from "elysia";
import { z } from "zod";
import { DemoRequest, DemoResult, EncoderProbe, EncoderProbeQuery, ShmName, SourceQuery, SourceStatus } from "./model.ts";
import type { CaptureService } from "./service.ts";

export const captureRoutes = (capture: CaptureService) =>
  new Elysia({ name: "neuron.capture", prefix: "/capture", detail: { tags: ["capture"] } })
    .get("/encoders", ({ query }) => capture.probeEncoders(query.codec), {
      query: EncoderProbeQuery,
      response: { 200: EncoderProbe },
      detail: {
        summary: "Probe the video encoders",
        description: "Hardware encoders are tried first; the chosen one and every candidate's reason are reported.",
      },
    })
    .get("/sources/:name", ({ params, query }) => capture.inspectSource(params.name, query.timeoutMs), {
      params: z.object({ name: ShmName }),
      query: SourceQuery,
      response: { 200: SourceStatus },
      detail: {
        summary: "Attach to a shared-memory frame source and describe it",
        description: "Reads the LGMP/KVMFR region <shmDir>/<name> (Looking Glass B7 layout) and one frame, bounded by timeoutMs.",
      },
    })
    .post("/demo", ({ body }) => capture.runDemo(body), {
      body: DemoRequest,
      response: { 200: DemoResult },
      detail: {
        summary: "Run the synthetic producer through the native capture → encode pipeline",
        description: "Bounded: at most 600 frames. Reports the encoder chosen, throughput and per-stage latency.",
      },
    });
