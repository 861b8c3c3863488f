/**
 * One-shot commands that act on the running service (entering a pairing PIN,
 * ending a session, ...) call its local API over the unix socket in the state
 * dir (mode 0600: only the service's user, normally root, can use it).
 */
import { existsSync } from "node:fs";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";

export async function callLocalApi<T>(config: Config, method: string, path: string, body?: unknown): Promise<T | null> {
  if (!existsSync(config.socketPath))
    throw new AppError("SERVICE_NOT_RUNNING", `the appliance service is not running (no socket at ${config.socketPath}); start it with \`neuron-appliance serve\``, { status: 503 });
  let res: Response;
  try {
    res = await fetch(`http://localhost/api/v1${path}`, {
      method,
      unix: config.socketPath,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new AppError("SERVICE_NOT_RUNNING", `cannot reach the appliance service at ${config.socketPath}: ${(err as Error).message}`, { status: 503, cause: err });
  }
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new AppError(e?.code ?? "SERVICE_ERROR", e?.message ?? `service answered ${res.status}`, { status: res.status });
  }
  return parsed as T | null;
}
