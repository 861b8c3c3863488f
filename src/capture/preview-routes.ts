/**
 * GET /vms/{name}/preview: the VM's screen as low-rate thumbnails, pushed by the appliance as long
 * as the request stays open — a stream of PNG images, each preceded by its length (4 bytes, big
 * endian). The console draws each on a canvas as it arrives; it never asks again.
 */
import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { VmNameParams } from "../vm/model.ts";
import type { LiveViewService } from "./live.ts";
import type { PreviewService } from "./preview.ts";

const LiveQuery = z.object({
  fps: z.coerce.number().int().min(1).max(60).default(30),
  bitrateKbps: z.coerce.number().int().min(200).max(50_000).default(4000),
});

/** One record: u32 length (big endian) of what follows, u8 flags (bit 0: IDR), u16 width, u16 height, the access unit. */
function liveRecord(u: { idr: boolean; width: number; height: number; data: Uint8Array }): Uint8Array {
  const out = new Uint8Array(9 + u.data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 5 + u.data.length);
  v.setUint8(4, u.idr ? 1 : 0);
  v.setUint16(5, u.width);
  v.setUint16(7, u.height);
  out.set(u.data, 9);
  return out;
}

const PreviewQuery = z.object({
  fps: z.coerce.number().min(0.2).max(5).default(1),
  width: z.coerce.number().int().min(32).max(640).default(320),
});

export const previewRoutes = (preview: PreviewService, live: LiveViewService) =>
  new Elysia({ name: "neuron.preview", detail: { tags: ["vms"] } })
  .get(
    "/vms/:name/live",
    async ({ params, query, request }) => {
      const units = live.units(params.name, query, request.signal);
      const first = await units.next();
      const stream = new ReadableStream<Uint8Array>({
        async start(ctl) {
          try {
            if (!first.done) ctl.enqueue(liveRecord(first.value));
            for await (const u of units) ctl.enqueue(liveRecord(u));
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
          void units.return(undefined);
        },
      });
      return new Response(stream, { headers: { "content-type": "application/octet-stream", "cache-control": "no-store", "x-content-type-options": "nosniff" } });
    },
    {
      params: VmNameParams,
      query: LiveQuery,
      response: { 200: z.string(), 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 503: ErrorBody },
      detail: {
        summary: "A running VM's screen as H.264, live (a stream)",
        description: "Its IVSHMEM frames through the capture → encode pipeline: records of u32 length (big endian), u8 flags (bit 0 IDR), u16 width, u16 height, then one Annex B access unit. The console decodes them with WebCodecs.",
      },
    },
  )
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
