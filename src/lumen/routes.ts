import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { notFound } from "../errors.ts";
import type { LumenService } from "./service.ts";

const LumenPairing = z.object({
  id: z.number().int(),
  clientId: z.string(),
  name: z.string(),
  createdAt: z.string(),
  lastSeenAt: z.string().nullable(),
});
const LumenSessionInfo = z.object({
  id: z.number().int(),
  codec: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  fps: z.number().int(),
  bitrateKbps: z.number().int(),
  epoch: z.number().int(),
  framesSent: z.number().int(),
  lossPpm: z.number().int(),
  parityShards: z.number().int(),
  dataShards: z.number().int(),
});
const LumenStatus = z.object({ enabled: z.boolean(), port: z.number().int().nullable(), sessions: z.array(LumenSessionInfo) });
const ClientIdParams = z.object({ clientId: z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/) });

/** lumen/1 host status and its paired clients (the PIN itself goes through POST /pairing/pin). */
export const lumenRoutes = (lumen: () => LumenService, enabled: boolean) =>
  new Elysia({ name: "neuron.lumen", detail: { tags: ["lumen"] } })
    .get(
      "/lumen",
      () => {
        const host = lumen().running;
        const sessions = host
          ? [...host.sessions.values()].map((s) => {
              const st = s.snapshot();
              return { id: s.id, ...s.config, epoch: s.epoch, framesSent: st.framesSent, lossPpm: st.lossPpm, parityShards: st.parityShards, dataShards: st.dataShards };
            })
          : [];
        return { enabled, port: host?.port ?? null, sessions };
      },
      { response: { 200: LumenStatus }, detail: { summary: "lumen/1 host: port and running sessions" } },
    )
    .get(
      "/lumen/pairings",
      () =>
        lumen()
          .pairings()
          .map((p) => ({ id: p.id, clientId: p.clientId, name: p.name, createdAt: p.createdAt.toISOString(), lastSeenAt: p.lastSeenAt?.toISOString() ?? null })),
      { response: { 200: z.array(LumenPairing) }, detail: { summary: "Clients paired over lumen/1", description: "Their pairing keys are never shown." } },
    )
    .delete(
      "/lumen/pairings/:clientId",
      ({ params, set }) => {
        if (!lumen().unpair(params.clientId)) throw notFound("lumen pairing", params.clientId);
        set.status = 204;
        return undefined;
      },
      { params: ClientIdParams, response: { 204: z.undefined(), 404: ErrorBody }, detail: { summary: "Unpair a lumen/1 client", description: "Its next connection must pair by PIN again." } },
    );
