/**
 * GET /vms/{name}/preview: the VM's screen as low-rate thumbnails, pushed by the appliance as long
 * as the request stays open — a stream of PNG images, each preceded by its length (4 bytes, big
 * endian). The console draws each on a canvas as it arrives; it never asks again.
 */
import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { VmNameParams } from "../vm/model.ts";
import type { PreviewService } from "./preview.ts";

const PreviewQuery = z.object({
  fps: z.coerce.number().min(0.2).max(5).default(1),
  width: z.coerce.number().int().min(32).max(640).default(320),
});

export const previewRoutes = (preview: PreviewService) =>
  new Elysia({ name: "neuron.preview", detail: { tags: ["vms"] } })
  .get(
    "/vms/:name/preview",
    async ({ params, query, request }) => {
      const frames = preview.frames(params.name, query, request.signal);
      // the first frame (or the refusal) before the answer: a VM that is off is an error, not an empty stream
      const first = await frames.next();
      const stream = new ReadableStream<Uint8Array>({
        async start(ctl) {
          const push = (png: Uint8Array) => {
            const head = new Uint8Array(4);
            new DataView(head.buffer).setUint32(0, png.length);
            ctl.enqueue(head);
            ctl.enqueue(png);
          };
          try {
            if (!first.done) push(first.value);
            for await (const png of frames) push(png);
          } catch {
            /* the request went away */
          }
          try {
            ctl.close();
          } catch {
            /* already closed */
          }
        },
        cancel() {
          void frames.return(undefined);
        },
      });
      return new Response(stream, { headers: { "content-type": "application/octet-stream", "cache-control": "no-store", "x-content-type-options": "nosniff" } });
    },
    {
      params: VmNameParams,
      query: PreviewQuery,
      response: { 200: z.string(), 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 503: ErrorBody },
      detail: {
        summary: "Thumbnails of a running VM's screen (a stream)",
        description: "PNG images from the VM's IVSHMEM frames (its Looking Glass host; while none writes frames, QEMU's display through QMP screendump), `fps` a second (0.2-5, default 1), at most `width` pixels wide; each preceded by its length as 4 bytes big endian. 409 when the VM is not running or has no shared memory.",
      },
    },
  );
