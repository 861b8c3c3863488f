/** audit_log rows written by the VM module (libvirt definitions made and removed). */
import { and, desc, eq, like } from "drizzle-orm";
import type { Db } from "../client.ts";
import { auditLog, AUDIT_STATUSES } from "../schema.ts";

export type AuditRow = typeof auditLog.$inferSelect;
export type AuditStatus = (typeof AUDIT_STATUSES)[number];

export interface VmAuditEntry {
  actor: string;
  action: `vm.${string}`;
  target: string;
  status: AuditStatus;
  details: Record<string, unknown>;
  backupPath?: string | null;
}

export function vmAuditRepo(db: Db) {
  return {
    record: (e: VmAuditEntry): AuditRow =>
      db
        .insert(auditLog)
        .values({ actor: e.actor, action: e.action, target: e.target, status: e.status, details: JSON.stringify(e.details), backupPath: e.backupPath ?? null })
        .returning()
        .get(),
    forVm: (name: string): AuditRow[] =>
      db.select().from(auditLog).where(and(eq(auditLog.target, name), like(auditLog.action, "vm.%"))).orderBy(desc(auditLog.id)).all(),
  };
}
export type VmAuditRepo = ReturnType<typeof vmAuditRepo>;
