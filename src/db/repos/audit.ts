import { and, desc, eq } from "drizzle-orm";
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
    list: (action: string, limit = 100): AuditRow[] =>
      db.select().from(auditLog).where(eq(auditLog.action, action)).orderBy(desc(auditLog.id)).limit(limit).all(),
  };
}
export type AuditRepo = ReturnType<typeof auditRepo>;
