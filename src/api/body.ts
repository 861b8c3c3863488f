/**
 * Request body bounds. A declared content-length over the limit is refused
 * here with our error body before anything is read; bodies without a length
 * (chunked) are cut off by the HTTP server itself (Bun.serve's
 * maxRequestBodySize, set from the same config value in api/server.ts).
 */
import { AppError } from "../errors.ts";

export const bodyTooLarge = (limit: number) =>
  new AppError("BODY_TOO_LARGE", `request body exceeds the limit of ${limit} bytes`, { status: 413 });

export function rejectDeclaredOversize(request: Request, limit: number): void {
  const header = request.headers.get("content-length");
  if (header === null) return;
  const declared = Number(header);
  if (!Number.isSafeInteger(declared) || declared < 0)
    throw new AppError("MALFORMED_REQUEST", "invalid content-length header", { status: 400 });
  if (declared > limit) throw bodyTooLarge(limit);
}
