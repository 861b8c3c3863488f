import { and, desc, eq, lt, sql } from "drizzle-orm";
import type { Db } from "../client.ts";
import { auditLog } from "../schema.ts";

export type AuditRow = typeof auditLog.$inferSelect;
export type AuditInsert = typeof auditLog.$inferInsert;
export type AuditStatus = AuditRow["status"];

export function auditRepo(db: Db) {
  return {
    insert: (row: AuditInsert): AuditRow => db.insert(auditLog).values(row).returning().get(),
    get: (id: number): AuditRow | undefined => db.select().from(auditLog).where(eq(auditLog.id, id)).get(),
    setStatus: (id: number, status: AuditStatus, details?: string, backupPath?: string): AuditRow | undefined =>
      db
        .update(auditLog)
        .set({ status, ...(details === undefined ? {} : { details }), ...(backupPath === undefined ? {} : { backupPath }) })
        .where(eq(auditLog.id, id))
        .returning()
        .get(),
    /** Newest rows of an action in a status, newest first. */
    latest: (action: string, status: AuditStatus, limit = 50): AuditRow[] =>
      db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, action), eq(auditLog.status, status)))
        .orderBy(desc(auditLog.id))
        .limit(limit)
        .all(),
    /** Newest first; optional exact action, actor prefix, and ids below `before` (paging). */
    query: (q: { limit: number; action?: string; actor?: string; before?: number }): AuditRow[] => {
      const conds = [
        q.action ? eq(auditLog.action, q.action) : undefined,
        q.actor ? sql`substr(${auditLog.actor}, 1, ${q.actor.length}) = ${q.actor}` : undefined,
        q.before ? lt(auditLog.id, q.before) : undefined,
      ].filter((c) => c !== undefined);
      return db
        .select()
        .from(auditLog)
        .where(conds.length ? and(...conds) : undefined)
        .orderBy(desc(auditLog.id))
        .limit(q.limit)
        .all();
    },
    list: (action: string, limit = 100): AuditRow[] =>
      db.select().from(auditLog).where(eq(auditLog.action, action)).orderBy(desc(auditLog.id)).limit(limit).all(),
  };
}
export type AuditRepo = ReturnType<typeof auditRepo>;
