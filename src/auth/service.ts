/**
 * Credentials of the management API: API tokens (Bearer), one-time login
 * codes and the browser sessions made from them, and the audit trail of
 * every mutating call. Only SHA-256 digests of secrets are stored; the
 * secrets themselves are 32 random bytes, shown once.
 *
 * Verified credentials are cached in memory (keyed by the presented secret),
 * so an authenticated request costs a Map lookup; the cache is dropped on
 * every revoke/expiry and holds only credentials that exist in the database.
 */
import { randomBytes, createHash, timingSafeEqual } from "node:crypto";
import { and, eq, gt, isNotNull, isNull, lt, lte, or } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { auditRepo, type AuditRepo } from "../db/repos/audit.ts";
import { apiTokens, browserSessions, loginCodes } from "../db/schema.ts";
import { AppError, conflict, notFound } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Caller } from "./caller.ts";
import type { ApiScope, AuditEntry, AuditQuery, LoginCode, SessionCreated, TokenCreated, TokenInfo } from "./model.ts";

const TOKEN_PREFIX = "nat_";
const LAST_USED_EVERY_MS = 60_000;
/** Failed login-code exchanges allowed per address per window before it is refused for the window. */
const LOGIN_FAILURES_PER_WINDOW = 10;
const LOGIN_WINDOW_MS = 60_000;

export const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex");
const secret = () => randomBytes(32).toString("base64url");
const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The CSRF token of a session is derived from the cookie's secret: nothing extra to store or leak. */
export const csrfFor = (sessionSecret: string) => createHash("sha256").update("neuron-csrf\0").update(sessionSecret).digest("base64url");

export function csrfMatches(sessionSecret: string, presented: string | null): boolean {
  if (!presented) return false;
  const want = Buffer.from(csrfFor(sessionSecret));
  const got = Buffer.from(presented);
  return want.length === got.length && timingSafeEqual(want, got);
}

export interface AuthSettings {
  loginCodeTtlMs: number;
  browserSessionTtlMs: number;
}

type TokenRow = typeof apiTokens.$inferSelect;
type SessionRow = typeof browserSessions.$inferSelect;

export class AuthService {
  private tokenCache = new Map<string, { id: number; name: string; scope: ApiScope; lastUsedWrite: number }>();
  private sessionCache = new Map<string, { id: number; scope: ApiScope; createdBy: string; expiresAt: number }>();
  private loginFailures = new Map<string, { count: number; windowStart: number }>();
  private readonly auditLog: AuditRepo;

  constructor(
    private readonly db: Db,
    private readonly settings: AuthSettings,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.auditLog = auditRepo(db);
  }

  // ── API tokens ──────────────────────────────────────────────────────────

  createToken(name: string, scope: ApiScope, createdBy: string): TokenCreated {
    if (this.db.select({ id: apiTokens.id }).from(apiTokens).where(eq(apiTokens.name, name)).get())
      throw conflict(`a token named ${JSON.stringify(name)} exists; revoke it first or pick another name`);
    const token = TOKEN_PREFIX + secret();
    const row = this.db.insert(apiTokens).values({ name, scope, tokenHash: sha256Hex(token), createdBy }).returning().get();
    this.log.info("API token created", { token: name, scope, by: createdBy });
    return { ...tokenInfo(row), token };
  }

  listTokens(): TokenInfo[] {
    return this.db.select().from(apiTokens).orderBy(apiTokens.id).all().map(tokenInfo);
  }

  revokeToken(name: string, by: string): void {
    const gone = this.db.delete(apiTokens).where(eq(apiTokens.name, name)).returning({ id: apiTokens.id }).all();
    if (gone.length === 0) throw notFound("API token", name);
    this.tokenCache.clear();
    this.log.info("API token revoked", { token: name, by });
  }

  /** The caller a Bearer token stands for, or null when it is not a live token. */
  verifyToken(token: string): Caller | null {
    const now = this.now();
    const hit = this.tokenCache.get(token);
    if (hit) {
      if (now - hit.lastUsedWrite > LAST_USED_EVERY_MS) {
        hit.lastUsedWrite = now;
        this.db.update(apiTokens).set({ lastUsedAt: new Date(now) }).where(eq(apiTokens.id, hit.id)).run();
      }
      return { kind: "token", id: hit.id, name: hit.name, scope: hit.scope };
    }
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 128) return null;
    const row = this.db.select().from(apiTokens).where(eq(apiTokens.tokenHash, sha256Hex(token))).get();
    if (!row) return null;
    this.db.update(apiTokens).set({ lastUsedAt: new Date(now) }).where(eq(apiTokens.id, row.id)).run();
    this.tokenCache.set(token, { id: row.id, name: row.name, scope: row.scope, lastUsedWrite: now });
    return { kind: "token", id: row.id, name: row.name, scope: row.scope };
  }

  // ── Login codes and browser sessions ────────────────────────────────────

  createLoginCode(scope: ApiScope, createdBy: string): LoginCode {
    const code = secret();
    const expiresAt = new Date(this.now() + this.settings.loginCodeTtlMs);
    this.db.delete(loginCodes).where(or(lt(loginCodes.expiresAt, new Date(this.now())), isNotNull(loginCodes.usedAt))!).run();
    this.db.insert(loginCodes).values({ codeHash: sha256Hex(code), scope, createdBy, expiresAt }).run();
    this.log.info("login code created", { scope, by: createdBy, expiresAt: expiresAt.toISOString() });
    return { code, scope, expiresAt: expiresAt.toISOString() };
  }

  /**
   * Exchanges a one-time login code for a session. Each code works once and
   * only until it expires; an address that fails too often is refused for a while.
   */
  createSession(code: string, remoteIp: string): SessionCreated & { secret: string } {
    const now = this.now();
    const fails = this.loginFailures.get(remoteIp);
    if (fails && now - fails.windowStart < LOGIN_WINDOW_MS && fails.count >= LOGIN_FAILURES_PER_WINDOW)
      throw new AppError("LOGIN_RATE_LIMITED", "too many wrong login codes from this address; wait a minute", { status: 429 });
    const claimed = this.db
      .update(loginCodes)
      .set({ usedAt: new Date(now) })
      .where(and(eq(loginCodes.codeHash, sha256Hex(code)), isNull(loginCodes.usedAt), gt(loginCodes.expiresAt, new Date(now))))
      .returning()
      .get();
    if (!claimed) {
      const f = fails && now - fails.windowStart < LOGIN_WINDOW_MS ? fails : { count: 0, windowStart: now };
      f.count++;
      this.loginFailures.set(remoteIp, f);
      if (this.loginFailures.size > 4096) this.pruneLoginFailures(now);
      this.log.warn("login code refused", { remoteIp, failures: f.count });
      throw new AppError("LOGIN_CODE_INVALID", "the login code is wrong, used or expired: ask for a new one", { status: 401 });
    }
    const sessionSecret = secret();
    const expiresAt = new Date(now + this.settings.browserSessionTtlMs);
    const row = this.db
      .insert(browserSessions)
      .values({ secretHash: sha256Hex(sessionSecret), scope: claimed.scope, createdBy: claimed.createdBy, remoteIp, expiresAt })
      .returning()
      .get();
    this.log.info("browser session started", { session: row.id, scope: row.scope, remoteIp, codeBy: claimed.createdBy });
    return { secret: sessionSecret, csrfToken: csrfFor(sessionSecret), scope: row.scope, expiresAt: expiresAt.toISOString() };
  }

  verifySession(sessionSecret: string): Caller | null {
    const now = this.now();
    let hit = this.sessionCache.get(sessionSecret);
    if (!hit) {
      if (sessionSecret.length > 128) return null;
      const row: SessionRow | undefined = this.db.select().from(browserSessions).where(eq(browserSessions.secretHash, sha256Hex(sessionSecret))).get();
      if (!row) return null;
      hit = { id: row.id, scope: row.scope, createdBy: row.createdBy, expiresAt: row.expiresAt.getTime() };
      if (this.sessionCache.size > 1024) this.sessionCache.clear();
      this.sessionCache.set(sessionSecret, hit);
    }
    if (hit.expiresAt <= now) {
      this.sessionCache.delete(sessionSecret);
      this.db.delete(browserSessions).where(lte(browserSessions.expiresAt, new Date(now))).run();
      return null;
    }
    return { kind: "session", id: hit.id, scope: hit.scope, createdBy: hit.createdBy };
  }

  endSession(sessionSecret: string): void {
    this.sessionCache.delete(sessionSecret);
    this.db.delete(browserSessions).where(eq(browserSessions.secretHash, sha256Hex(sessionSecret))).run();
  }

  private pruneLoginFailures(now: number): void {
    for (const [ip, f] of this.loginFailures) if (now - f.windowStart >= LOGIN_WINDOW_MS) this.loginFailures.delete(ip);
  }

  // ── Audit ───────────────────────────────────────────────────────────────

  /** One row per mutating API call: who, what, and how it ended. */
  recordCall(actor: string, method: string, path: string, status: number): void {
    this.auditLog.insert({ actor, action: "api.call", target: `${method} ${path}`, status: status < 400 ? "applied" : "failed", details: JSON.stringify({ status }) });
  }

  audit(q: AuditQuery): AuditEntry[] {
    return this.auditLog.query(q).map((r) => ({
      id: r.id,
      createdAt: r.createdAt.toISOString(),
      actor: r.actor,
      action: r.action,
      target: r.target,
      status: r.status,
      dryRun: r.dryRun,
      details: parseDetails(r.details),
    }));
  }
}

function parseDetails(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function tokenInfo(row: TokenRow): TokenInfo {
  return { id: row.id, name: row.name, scope: row.scope, createdBy: row.createdBy, createdAt: row.createdAt.toISOString(), lastUsedAt: iso(row.lastUsedAt) };
}
