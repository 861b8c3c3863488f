/**
 * Calls to the management API under the browser session. The session cookie is HttpOnly; the
 * CSRF token the login answered goes with every mutating request (X-CSRF-Token) and lives in
 * sessionStorage (this tab only).
 */
const CSRF_KEY = "neuron.csrf";
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

export const csrfToken = () => sessionStorage.getItem(CSRF_KEY);

export async function login(code: string): Promise<void> {
  const r = await call<{ csrfToken: string }>("POST", "/auth/session", { code });
  sessionStorage.setItem(CSRF_KEY, r.csrfToken);
}

export async function logout(): Promise<void> {
  try {
    await call("DELETE", "/auth/session");
  } finally {
    sessionStorage.removeItem(CSRF_KEY);
  }
}

export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const t = csrfToken();
    if (t) headers["x-csrf-token"] = t;
  }
  let res: Response;
  try {
    res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin", cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "NETWORK", `the appliance did not answer (${(err as Error).message})`);
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? (res.status === 404 ? "NOT_FOUND" : "HTTP_" + res.status), e?.message ?? `the appliance answered ${res.status}`);
  }
  return parsed as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => call<T>("POST", path, body ?? {});
export const del = <T>(path: string) => call<T>("DELETE", path);
export const patch = <T>(path: string, body: unknown) => call<T>("PATCH", path, body);

/** GET that answers null where the route does not exist on this appliance (404 NOT_FOUND of an absent API). */
export async function getOptional<T>(path: string): Promise<T | null> {
  try {
    return await get<T>(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}
