/**
 * Request body bounds. A declared content-length over the limit is refused
 * here with our error body before anything is read; bodies without a length
 * (chunked) are cut off by the HTTP server itself (Bun.serve's
 * maxRequestBodySize, set from the same config value in api/server.ts).
 */
import { AppError } from "../errors.ts";

export const bodyTooLarge = (limit: number) =>
  new AppError("BODY_TOO_LARGE", `request body exceeds the limit of ${limit} bytes`, { status: 413 });

/**
 * An input batch is validated whole and refused whole with 422 (nothing is sent), however
 * it is bad: one over this size is such a batch (1024 events are far below it), refused
 * before a byte of it is read, whatever the transport.
 */
export const INJECT_MAX_BODY_BYTES = 256 * 1024;
const INJECT_PATH = /^\/api\/v1\/vms\/[^/]+\/inject-input$/;

export interface BodyLimit {
  limit: number;
  status: number;
  code: string;
  message: string;
}

/** The body bound of a request: the global one, or a route's own (inject-input: 422). */
export function bodyLimitFor(method: string, pathname: string, globalLimit: number): BodyLimit {
  if (method === "POST" && INJECT_PATH.test(pathname)) {
    const limit = Math.min(globalLimit, INJECT_MAX_BODY_BYTES);
    return { limit, status: 422, code: "INPUT_BATCH_TOO_LARGE", message: `an input batch is at most 1024 events and ${limit} bytes of JSON: nothing was sent` };
  }
  return { limit: globalLimit, status: 413, code: "BODY_TOO_LARGE", message: `request body exceeds the limit of ${globalLimit} bytes` };
}

/** The error a body over its bound gets. */
export const bodyRefusal = (b: BodyLimit) => new AppError(b.code, b.message, { status: b.status });

/** Whether a request is an input batch (its body refusals answer 422, not 400/413). */
export const isInjectRequest = (method: string, pathname: string) => method === "POST" && INJECT_PATH.test(pathname);

export function rejectDeclaredOversize(request: Request, limit: number): void {
  const header = request.headers.get("content-length");
  if (header === null) return;
  const declared = Number(header);
  if (!Number.isSafeInteger(declared) || declared < 0)
    throw new AppError("MALFORMED_REQUEST", "invalid content-length header", { status: 400 });
  const b = bodyLimitFor(request.method, new URL(request.url).pathname, limit);
  if (declared > b.limit) throw bodyRefusal(b);
}

/**
 * A body sent without a length (chunked) read here, up to its bound: the request again with
 * the bytes, or the refusal's response. Requests with a declared length pass unread (the
 * onRequest guard refuses them by their length).
 */
export async function boundUndeclaredBody(request: Request, globalLimit: number): Promise<Request | Response> {
  if (!request.body || request.headers.get("content-length") !== null) return request;
  const b = bodyLimitFor(request.method, new URL(request.url).pathname, globalLimit);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > b.limit) {
      void reader.cancel().catch(() => {});
      return Response.json({ error: { code: b.code, message: b.message } }, { status: b.status, headers: { connection: "close" } });
    }
    chunks.push(value);
  }
  return new Request(request, { body: Buffer.concat(chunks) });
}
