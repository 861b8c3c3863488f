import { z } from "zod";
import { API_SCOPES } from "../db/schema.ts";

export const ApiScope = z.enum(API_SCOPES).meta({ description: "read: GET only; admin: everything" });
export type ApiScope = z.infer<typeof ApiScope>;

export const TokenName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-', starting with a letter or digit");

export const TokenCreate = z.strictObject({ name: TokenName, scope: ApiScope.default("read") });
export type TokenCreate = z.infer<typeof TokenCreate>;

export const TokenInfo = z
  .object({
    id: z.number().int(),
    name: z.string(),
    scope: ApiScope,
    createdBy: z.string(),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable(),
  })
  .meta({ id: "ApiToken" });
export type TokenInfo = z.infer<typeof TokenInfo>;

export const TokenCreated = TokenInfo.extend({
  token: z.string().meta({ description: "The secret, shown this once: send it as `Authorization: Bearer <token>`" }),
}).meta({ id: "ApiTokenCreated" });
export type TokenCreated = z.infer<typeof TokenCreated>;

export const TokenNameParams = z.object({ name: TokenName });

export const LoginCodeCreate = z.strictObject({ scope: ApiScope.default("admin") });
export const LoginCode = z
  .object({ code: z.string(), scope: ApiScope, expiresAt: z.string() })
  .meta({ id: "LoginCode", description: "A one-time code a browser exchanges for a session (POST /auth/session)" });
export type LoginCode = z.infer<typeof LoginCode>;

export const SessionCreate = z.strictObject({ code: z.string().min(1).max(128) });
export const SessionCreated = z
  .object({ csrfToken: z.string().meta({ description: "Send it as the X-CSRF-Token header with every mutating request" }), scope: ApiScope, expiresAt: z.string() })
  .meta({ id: "BrowserSession" });
export type SessionCreated = z.infer<typeof SessionCreated>;

export const Whoami = z
  .object({
    kind: z.enum(["local", "token", "session", "anonymous"]),
    caller: z.string(),
    scope: z.enum(["read", "admin", "none"]),
  })
  .meta({ id: "Whoami" });
export type Whoami = z.infer<typeof Whoami>;

export const AuditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  action: z.string().max(128).optional(),
  actor: z.string().max(256).optional(),
  before: z.coerce.number().int().min(1).optional(),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

export const AuditEntry = z
  .object({
    id: z.number().int(),
    createdAt: z.string(),
    actor: z.string(),
    action: z.string(),
    target: z.string(),
    status: z.string(),
    dryRun: z.boolean(),
    details: z.unknown(),
  })
  .meta({ id: "AuditEntry" });
export type AuditEntry = z.infer<typeof AuditEntry>;

/** Names used on the wire. */
export const SESSION_COOKIE = "neuron_session";
export const CSRF_HEADER = "x-csrf-token";
