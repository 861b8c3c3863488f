import { Elysia } from "elysia";
import { z } from "zod";
import { DemoRequest, DemoResult, EncoderProbe, EncoderProbeQuery, ShmName, SourceKindList, SourceQuery, SourceStatus, VmTransportChoice } from "./model.ts";
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
    .get("/sources", () => capture.listSources(), {
      response: { 200: SourceKindList },
      detail: {
        summary: "List every frame-source kind and whether this host can use it",
        description: "IVSHMEM (LGMP/KVMFR, NFB1), vsock, unix socket and the host's own desktop (virtual output); each with available and, when not, the reason.",
      },
    })
    .get("/transport/:vm", ({ params }) => capture.vmTransport(params.vm), {
      params: z.object({ vm: ShmName }),
      response: { 200: VmTransportChoice },
      detail: {
        summary: "Which transport a VM's frames take",
        description: "IVSHMEM, then vsock, then a unix socket, by what the VM's definition and the host offer; every candidate's reason.",
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
