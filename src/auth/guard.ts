/**
 * The one authentication and authorization layer of the management API.
 * Every request, on every listener, passes here before any route runs:
 *
 *   1. Host must be one of the appliance's names or addresses (DNS rebinding);
 *   2. an Origin must be the appliance's own, and a cross-site fetch
 *      (Sec-Fetch-Site) may not mutate (cross-site requests, forms);
 *   3. a mutating request's body is `application/json` or absent (415);
 *   4. the caller is resolved: peer credentials on the local socket, else a
 *      Bearer token, else a session cookie (whose mutations need the CSRF
 *      header); without credentials only the public routes answer (401);
 *      `read` may only GET (403);
 *   5. a JSON body is bounded (depth, keys, values, string length) before it
 *      is parsed (400);
 *   6. every mutating call that passed leaves a row in the audit log.
 */
import { Elysia } from "elysia";
import { isInjectRequest } from "../api/body.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { callerLabel, callerScope, transportOf, type Caller, type Transport } from "./caller.ts";
import type { HostPolicy } from "./hosts.ts";
import { checkJsonLimits, type JsonLimits } from "./json-limits.ts";
import { CSRF_HEADER, SESSION_COOKIE } from "./model.ts";
import { csrfMatches, type AuthService } from "./service.ts";
import type { UserDb } from "./users.ts";

export interface GuardDeps {
  auth: AuthService;
  users: UserDb;
  hosts: HostPolicy;
  adminGroup: string;
  jsonLimits: JsonLimits;
  log: Logger;
  /** The API prefix ("/api/v1"). */
  prefix: string;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const callers = new WeakMap<Request, Caller>();
/** The audit step still owed for a request that got past authentication. */
const pendingAudit = new WeakMap<Request, (status: number) => void>();

/** Writes the audit row owed for this request, if any (the error mapper calls it for failed calls). */
export function settleAudit(request: Request, status: number): void {
  const record = pendingAudit.get(request);
  if (!record) return;
  pendingAudit.delete(request);
  record(status);
}

/** The caller the guard resolved for this request (anonymous when none). */
export function callerOf(request: Request): Caller {
  return callers.get(request) ?? { kind: "anonymous" };
}

const deny = (status: number, code: string, message: string) => new AppError(code, message, { status });

function authorityOf(url: string): string {
  const start = url.indexOf("//") + 2;
  const end = url.indexOf("/", start);
  return end < 0 ? url.slice(start) : url.slice(start, end);
}

function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue(header: string | null, name: string): string | null {
  if (!header) return null;
  const key = `${name}=`;
  for (let at = header.indexOf(key); at >= 0; at = header.indexOf(key, at + 1)) {
    // a whole cookie name: at the start, or after "; " (or ";")
    let before = at - 1;
    while (before >= 0 && header.charCodeAt(before) === 0x20) before--;
    if (before >= 0 && header.charCodeAt(before) !== 0x3b) continue;
    const end = header.indexOf(";", at);
    return header.slice(at + key.length, end < 0 ? undefined : end).trim();
  }
  return null;
}

export function isJsonContentType(value: string | null): boolean {
  if (value === null) return false;
  const semi = value.indexOf(";");
  return (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase() === "application/json";
}

/**
 * Routes that answer without credentials: liveness, the OpenAPI document and its assets, the web
 * console's page and assets (they hold no data), and the login-code exchange.
 */
function publicRoute(method: string, path: string, prefix: string): boolean {
  if (method === "GET" || method === "HEAD")
    return path === `${prefix}/health` || path === "/swagger" || path.startsWith("/swagger/") || path === "/" || path === "/console" || path.startsWith("/console/");
  return method === "POST" && path === `${prefix}/auth/session`;
}

function resolveCaller(request: Request, t: Transport, deps: GuardDeps, mutating: boolean): Caller {
  if (t.kind === "unix") {
    return { kind: "local", uid: t.uid, pid: t.pid, user: deps.users.userName(t.uid), admin: deps.users.isAdmin(t.uid, t.gid, deps.adminGroup) };
  }
  const authz = request.headers.get("authorization");
  if (authz !== null) {
    const m = /^Bearer +(\S{1,256})$/i.exec(authz);
    const caller = m ? deps.auth.verifyToken(m[1]!) : null;
    if (!caller) throw deny(401, "INVALID_TOKEN", "the Bearer token is unknown or revoked");
    return caller;
  }
  const cookie = cookieValue(request.headers.get("cookie"), SESSION_COOKIE);
  if (cookie !== null) {
    const caller = deps.auth.verifySession(cookie);
    if (!caller) throw deny(401, "SESSION_EXPIRED", "the browser session has ended: log in again with a new login code");
    if (mutating && !csrfMatches(cookie, request.headers.get(CSRF_HEADER)))
      throw deny(403, "CSRF_TOKEN_MISSING", `a browser session's mutating request needs the ${CSRF_HEADER} header it was given at login`);
    return caller;
  }
  return { kind: "anonymous" };
}

function checkOrigin(request: Request, t: Transport, host: string, mutating: boolean): void {
  const origin = request.headers.get("origin");
  if (origin !== null) {
    const scheme = t.kind === "tcp" && t.tls ? "https" : "http";
    if (origin.toLowerCase() !== `${scheme}://${host.toLowerCase()}`)
      throw deny(403, "ORIGIN_NOT_ALLOWED", `requests from ${origin.slice(0, 200)} are not accepted: only the appliance's own pages may call it`);
  }
  if (mutating) {
    const site = request.headers.get("sec-fetch-site");
    if (site !== null && site !== "same-origin" && site !== "none")
      throw deny(403, "ORIGIN_NOT_ALLOWED", `a ${site} request may not change anything`);
  }
}

export function authGuard(deps: GuardDeps) {
  const { auth, hosts, jsonLimits, log, prefix } = deps;
  /** One audit row per mutating call that got past authentication (successes from onAfterHandle, errors from the error mapper). */
  const recordOutcome = (request: Request, status: number) => {
    if (SAFE_METHODS.has(request.method)) return;
    const caller = callers.get(request);
    if (!caller) return;
    // anonymous refusals are logged, not audited: any LAN host could fill the table
    if (caller.kind === "anonymous" && status >= 400) return;
    try {
      auth.recordCall(callerLabel(caller), request.method, pathOf(request.url), status);
    } catch (err) {
      log.error("audit row not written", { error: err });
    }
  };
  return new Elysia({ name: "neuron.auth" })
    .onRequest(async ({ request, set }) => {
      const t = transportOf(request);
      const method = request.method;
      const path = pathOf(request.url);
      // the URL's authority is the Host header as the listener read it; both must name us
      const host = authorityOf(request.url);
      const header = request.headers.get("host");
      const remote = t.kind === "tcp" ? t.remoteIp : `uid ${t.uid}`;
      try {
        if (!hosts.allows(host) || (header !== null && header !== host && !hosts.allows(header))) throw deny(403, "HOST_NOT_ALLOWED", `host ${JSON.stringify((hosts.allows(host) ? header! : host).slice(0, 200))} is not one of the appliance's names`);
        const mutating = !SAFE_METHODS.has(method);
        checkOrigin(request, t, host, mutating);
        const hasBody = request.body !== null || (request.headers.get("content-length") ?? "0") !== "0";
        const contentType = request.headers.get("content-type");
        if (mutating && (hasBody || contentType !== null) && !isJsonContentType(contentType))
          throw deny(415, "UNSUPPORTED_MEDIA_TYPE", "a request that changes something takes an application/json body (or none)");
        const caller = resolveCaller(request, t, deps, mutating);
        callers.set(request, caller);
        if (mutating) pendingAudit.set(request, (status) => recordOutcome(request, status));
        if (!publicRoute(method, path, prefix)) {
          const scope = callerScope(caller);
          if (scope === "none") {
            if (caller.kind === "local")
              throw deny(403, "FORBIDDEN", `local user ${caller.user} (uid ${caller.uid}) is neither root nor in the group ${deps.adminGroup}`);
            set.headers["www-authenticate"] = 'Bearer realm="neuron-appliance"';
            throw deny(401, "UNAUTHENTICATED", "credentials required: an API token (Authorization: Bearer) or a browser session");
          }
          if (scope === "read" && mutating) throw deny(403, "READ_ONLY", `${callerLabel(caller)} may only read (scope read)`);
        }
        if (mutating && hasBody) {
          const bytes = new Uint8Array(await request.clone().arrayBuffer());
          const broken = checkJsonLimits(bytes, jsonLimits);
          if (broken && isInjectRequest(method, path))
            throw deny(422, "INPUT_BATCH_TOO_LARGE", `an input batch is refused whole, nothing was sent: ${broken.message}`);
          if (broken) throw deny(400, "BODY_LIMIT", `request body refused before parsing: ${broken.message}`);
        }
      } catch (err) {
        if (err instanceof AppError && err.status < 500)
          log.warn("API request refused", { method, path, remote, status: err.status, code: err.errorCode });
        throw err;
      }
    })
    .onAfterHandle({ as: "global" }, ({ request, set }) => settleAudit(request, typeof set.status === "number" ? set.status : 200));
}
