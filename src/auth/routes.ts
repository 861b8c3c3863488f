import { Elysia } from "elysia";
import { z } from "zod";
import { ErrorBody } from "../api/errors.ts";
import { callerLabel, callerScope, transportOf } from "./caller.ts";
import { callerOf, cookieValue } from "./guard.ts";
import { AuditEntry, AuditQuery, LoginCode, LoginCodeCreate, SESSION_COOKIE, SessionCreate, SessionCreated, TokenCreate, TokenCreated, TokenInfo, TokenNameParams, Whoami } from "./model.ts";
import type { AuthService } from "./service.ts";

const denied = { 401: ErrorBody, 403: ErrorBody };

function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? "; Secure" : ""}`;
}

export const authRoutes = (auth: AuthService) =>
  new Elysia({ name: "neuron.auth.routes", detail: { tags: ["auth"] } })
    .get(
      "/auth/whoami",
      ({ request }) => {
        const c = callerOf(request);
        return { kind: c.kind, caller: callerLabel(c), scope: callerScope(c) };
      },
      { response: { 200: Whoami, ...denied }, detail: { summary: "Who the API takes the caller for, and what it may do" } },
    )
    .post(
      "/auth/login-codes",
      ({ body, request, set }) => {
        set.status = 201;
        return auth.createLoginCode(body.scope, callerLabel(callerOf(request)));
      },
      {
        body: LoginCodeCreate,
        response: { 201: LoginCode, ...denied, 422: ErrorBody },
        detail: { summary: "Make a one-time login code for a browser", description: "Valid once, for config loginCodeTtlMs (5 minutes by default)." },
      },
    )
    .post(
      "/auth/session",
      ({ body, request, set }) => {
        const t = transportOf(request);
        const s = auth.createSession(body.code, t.kind === "tcp" ? t.remoteIp : "local");
        const maxAge = Math.max(1, Math.floor((Date.parse(s.expiresAt) - Date.now()) / 1000));
        set.headers["set-cookie"] = sessionCookie(s.secret, maxAge, t.kind === "tcp" && t.tls);
        set.headers["cache-control"] = "no-store";
        return { csrfToken: s.csrfToken, scope: s.scope, expiresAt: s.expiresAt };
      },
      {
        body: SessionCreate,
        response: { 200: SessionCreated, 401: ErrorBody, 422: ErrorBody, 429: ErrorBody },
        detail: {
          summary: "Exchange a login code for a browser session",
          description: `Sets the ${SESSION_COOKIE} cookie (HttpOnly, SameSite=Strict) and returns the CSRF token every mutating request of the session must carry as X-CSRF-Token.`,
          security: [],
        },
      },
    )
    .delete(
      "/auth/session",
      ({ request, set }) => {
        const cookie = cookieValue(request.headers.get("cookie"), SESSION_COOKIE);
        if (cookie) auth.endSession(cookie);
        set.headers["set-cookie"] = sessionCookie("", 0, false);
        set.status = 204;
        return undefined;
      },
      { response: { 204: z.undefined(), ...denied }, detail: { summary: "Log the browser session out" } },
    )
    .get("/tokens", () => auth.listTokens(), {
      response: { 200: z.array(TokenInfo), ...denied },
      detail: { summary: "API tokens (names and scopes; never the secrets)" },
    })
    .post(
      "/tokens",
      ({ body, request, set }) => {
        set.status = 201;
        return auth.createToken(body.name, body.scope, callerLabel(callerOf(request)));
      },
      {
        body: TokenCreate,
        response: { 201: TokenCreated, ...denied, 409: ErrorBody, 422: ErrorBody },
        detail: { summary: "Create an API token", description: "The answer holds the token; it is shown this once and stored only as a SHA-256 digest." },
      },
    )
    .delete(
      "/tokens/:name",
      ({ params, request, set }) => {
        auth.revokeToken(params.name, callerLabel(callerOf(request)));
        set.status = 204;
        return undefined;
      },
      { params: TokenNameParams, response: { 204: z.undefined(), ...denied, 404: ErrorBody }, detail: { summary: "Revoke an API token" } },
    )
    .get("/audit", ({ query }) => auth.audit(query), {
      query: AuditQuery,
      response: { 200: z.array(AuditEntry), ...denied, 422: ErrorBody },
      detail: { summary: "The audit log, newest first", description: "Every mutating API call (who: uid, token or session; what; how it ended) and every change to the host system." },
    });
