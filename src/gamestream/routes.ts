import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { callerLabel } from "../auth/caller.ts";
import { callerOf } from "../auth/guard.ts";
import { notFound } from "../errors.ts";
import { EndedSessionInfo, GameStreamStatus, Pairing, PairingAttemptParams, PairingIdParams, PendingPairing, PermissionChange, PinEntry, SessionChange, SessionIdParams, StreamSessionInfo } from "./model.ts";
import type { GameStreamService } from "./service.ts";

/** Pairing and stream-session management for the GUI and the CLI (through the local socket). */
export const gameStreamRoutes = (gamestream: () => GameStreamService, enabled: boolean) =>
  new Elysia({ name: "neuron.gamestream", detail: { tags: ["gamestream"] } })
    .get(
      "/gamestream",
      () => {
        const g = gamestream();
        return { enabled, hostname: g.hostname, uniqueId: g.identity.uniqueId, ports: g.ports, session: g.session(), sessions: g.sessions.size, maxSessions: g.sessions.maxSessions, httpRefused: g.httpRefusals() };
      },
      { response: { 200: GameStreamStatus }, detail: { summary: "GameStream host identity, ports and the newest running session", description: "All sessions: GET /sessions." } },
    )
    .delete(
      "/gamestream/session",
      ({ set }) => {
        set.status = gamestream().endSession() ? 204 : 404;
        return set.status === 404 ? { error: { code: "NOT_FOUND", message: "no stream session is running" } } : undefined;
      },
      { response: { 204: z.undefined(), 404: ErrorBody }, detail: { summary: "End every running stream session", description: "One session: DELETE /sessions/{id}." } },
    )
    .get("/pairing/pending", () => gamestream().pendingPairings(), {
      response: { 200: z.array(PendingPairing) },
      detail: { summary: "Clients waiting for the PIN to be entered" },
    })
    .post("/pairing/pin", ({ body }) => gamestream().submitPin(body.pin, body.attemptId), {
      body: PinEntry,
      response: { 200: PendingPairing, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody },
      detail: { summary: "Enter the PIN a Moonlight client shows", description: "Completes phase 1 of the waiting pairing; the client then finishes the exchange." },
    })
    .delete("/pairing/pending/:attemptId", ({ params }) => gamestream().cancelPairing(params.attemptId), {
      params: PairingAttemptParams,
      response: { 200: PendingPairing, 404: ErrorBody, 422: ErrorBody },
      detail: {
        summary: "Cancel a pairing attempt in progress",
        description: "The client's waiting request is answered with a failure at once and nothing is stored; the client may start over. Answers the attempt as it was.",
      },
    })
    .get("/pairings", () => gamestream().listPairings(), {
      response: { 200: z.array(Pairing) },
      detail: { summary: "Paired clients", description: "Each with its permissions: the first client paired has all, later ones `view` until granted more." },
    })
    .post("/pairings/:id/permissions", ({ params, body, request }) => gamestream().changePermissions(params.id, body, callerLabel(callerOf(request))), {
      params: PairingIdParams,
      body: PermissionChange,
      response: { 200: Pairing, 404: ErrorBody, 422: ErrorBody },
      detail: {
        summary: "Grant or revoke a paired client's permissions",
        description:
          "view (server info, app list, /resume of its own session), keyboard, mouse, controller (control-stream input; events without the permission are dropped and counted), launch (/launch), clipboard. Applies at once, running sessions included.",
      },
    })
    .delete(
      "/pairings/:id",
      ({ params, set, request }) => {
        gamestream().removePairing(params.id, callerLabel(callerOf(request)));
        set.status = 204;
        return undefined;
      },
      { params: PairingIdParams, response: { 204: z.undefined(), 404: ErrorBody }, detail: { summary: "Unpair a client" } },
    )
    .get("/sessions", () => gamestream().listSessions(), {
      response: { 200: z.array(StreamSessionInfo) },
      detail: {
        summary: "Stream sessions",
        description: "One per streaming client: client, app, mode, codec, bitrate, state, frames, host fps and latency, the loss the client reports, the audio source, and the control, video and audio statistics.",
      },
    })
    .get("/sessions/ended", () => gamestream().sessionHistory(), {
      response: { 200: z.array(EndedSessionInfo) },
      detail: { summary: "Recently ended stream sessions", description: "Newest first, at most 32, each with why it ended (cancelled, timed out, source ended, ...)." },
    })
    .get("/sessions/:id", ({ params }) => gamestream().sessionInfo(params.id), {
      params: SessionIdParams,
      response: { 200: StreamSessionInfo, 404: ErrorBody, 422: ErrorBody },
      detail: { summary: "One stream session" },
    })
    .patch("/sessions/:id", ({ params, body }) => gamestream().setSessionBitrate(params.id, body.bitrateKbps), {
      params: SessionIdParams,
      body: SessionChange,
      response: { 200: StreamSessionInfo, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody },
      detail: {
        summary: "Change a stream session's bitrate live",
        description: "The session's encoder takes the new target bitrate (kbps, 500-500000; its VBV is one frame of it) from the next frame on: no restart, no IDR, the client streams on. 409 while the session has no video yet (before RTSP PLAY).",
      },
    })
    .delete(
      "/sessions/:id",
      ({ params, set }) => {
        if (!gamestream().endSession(params.id, "ended-by-api")) throw notFound("stream session", params.id);
        set.status = 204;
        return undefined;
      },
      {
        params: SessionIdParams,
        response: { 204: z.undefined(), 404: ErrorBody, 422: ErrorBody },
        detail: { summary: "End a stream session", description: "Its client gets the control stream's graceful termination; its video and audio stop; other sessions stream on." },
      },
    );
