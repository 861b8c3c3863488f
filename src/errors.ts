/**
 * One error type for the whole appliance. A domain error carries a stable
 * `errorCode` (machine-readable, e.g. `IOMMU_DISABLED`), a public message that
 * may be shown to a user or API client, an HTTP-ish status used by the API
 * mapper, and an optional private cause that is logged but never serialised.
 *
 * (The field is not called `code`: Elysia reads `error.code` of thrown errors.)
 */
export class AppError extends Error {
  readonly errorCode: string;
  readonly status: number;
  readonly details?: unknown;

  constructor(
    errorCode: string,
    message: string,
    opts: { status?: number; cause?: unknown; details?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "AppError";
    this.errorCode = errorCode;
    this.status = opts.status ?? 500;
    this.details = opts.details;
  }
}

export const notFound = (what: string, id: string | number) =>
  new AppError("NOT_FOUND", `${what} ${JSON.stringify(String(id))} not found`, { status: 404 });

export const conflict = (message: string, cause?: unknown) =>
  new AppError("CONFLICT", message, { status: 409, cause });

export const invalid = (message: string, details?: unknown) =>
  new AppError("INVALID_INPUT", message, { status: 422, details });

/** Human-readable description of any thrown value, for logs and the CLI. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
