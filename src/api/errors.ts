/**
 * The one error mapper: domain errors → status + { error: { code, message } }.
 * Never a stack trace or a private cause to the client; those are logged.
 */
import { Elysia } from "elysia";
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { settleAudit } from "../auth/guard.ts";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: "Error" });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const errorBody = (code: string, message: string, details?: unknown): ErrorBody => ({
  error: details === undefined ? { code, message } : { code, message, details },
});

interface ValidationLike {
  type?: string;
  all?: { path?: string; message?: string; summary?: string }[];
  message?: string;
}

function validationMessage(err: ValidationLike): { message: string; details: unknown } {
  const issues = (err.all ?? []).map((i) => ({ path: i.path ?? "", message: i.summary ?? i.message ?? "invalid" }));
  const where = err.type ? `${err.type}: ` : "";
  const message = issues.length
    ? `${where}${issues.map((i) => `${i.path || "(root)"} ${i.message}`).join("; ")}`
    : `${where}invalid input`;
  return { message, details: issues };
}

export function errorHandler(log: Logger) {
  // destructured (not `ctx`): Elysia infers from the parameters which parts of a request to parse
  return new Elysia({ name: "neuron.errors" }).onError({ as: "global" }, ({ code, error, set, request }) => {
    const body = mapError(log, { code, error, set, request });
    settleAudit(request, typeof set.status === "number" ? set.status : 500);
    return body;
  });
}

function mapError(
  log: Logger,
  { code, error: thrown, set, request }: { code: unknown; error: unknown; set: { status?: number | string }; request: Request },
): ErrorBody {
  {
    // Errors thrown while parsing a body arrive wrapped in Elysia's ParseError.
    const error = code === "PARSE" && (thrown as Error).cause instanceof AppError ? ((thrown as Error).cause as AppError) : thrown;
    if (error instanceof AppError) {
      set.status = error.status;
      if (error.status >= 500) log.error(error.message, { code: error.errorCode, cause: error.cause, path: new URL(request.url).pathname });
      return errorBody(error.errorCode, error.message, error.details);
    }
    switch (code) {
      case "VALIDATION": {
        const v = error as unknown as ValidationLike;
        if (v.type === "response") {
          log.error("response failed its schema", { path: new URL(request.url).pathname, error: String(v.message) });
          set.status = 500;
          return errorBody("INTERNAL", "internal error");
        }
        set.status = 422;
        const { message, details } = validationMessage(v);
        return errorBody("VALIDATION_FAILED", message, details);
      }
      case "PARSE":
        set.status = 400;
        return errorBody("MALFORMED_BODY", "request body is not valid for its content type (malformed JSON?)");
      case "NOT_FOUND":
        set.status = 404;
        return errorBody("NOT_FOUND", `no route for ${request.method} ${new URL(request.url).pathname}`);
      default: {
        if ((error as unknown as { status?: unknown }).status === 413) {
          set.status = 413;
          return errorBody("BODY_TOO_LARGE", "request body is too large");
        }
        log.error("unhandled error", { path: new URL(request.url).pathname, error });
        set.status = 500;
        return errorBody("INTERNAL", "internal error");
      }
    }
  }
}
