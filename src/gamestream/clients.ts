/**
 * Paired Moonlight clients, matched by exact certificate: the SHA-256 of the
 * presented DER selects the stored pairing, and the stored certificate's DER
 * must equal the presented one byte for byte.
 */
import type { PairingRow, PairingsRepo } from "../db/repos/pairings.ts";
import type { GameStreamCrypto } from "./crypto.ts";
import { encodeHex, equalBytes } from "./hex.ts";
import { normalizePermissions, permissionsForNewPairing, type GsPermission } from "./permissions.ts";

export class PairedClients {
  /** fingerprint → DER of the stored certificate (filled on first use). */
  private readonly ders = new Map<string, Uint8Array>();
  /** fingerprint → permissions (read on every input event: kept in memory, dropped on any change). */
  private readonly perms = new Map<string, ReadonlySet<GsPermission> | null>();

  constructor(
    private readonly repo: PairingsRepo,
    private readonly crypto: GameStreamCrypto,
  ) {}

  /** The fingerprint of the pairing whose certificate is exactly `der`, or null. */
  match(der: Uint8Array): string | null {
    const fp = encodeHex(this.crypto.sha256(der));
    let stored = this.ders.get(fp);
    if (!stored) {
      const row = this.repo.byFingerprint(fp);
      if (!row) return null;
      try {
        stored = this.crypto.parseCert(row.certPem).der;
      } catch {
        return null;
      }
      this.ders.set(fp, stored);
    }
    return equalBytes(stored, der) ? fp : null;
  }

  /** The device name the client paired with, or null. */
  nameOf(fingerprint: string): string | null {
    return this.repo.byFingerprint(fingerprint)?.name ?? null;
  }

  seen(fingerprint: string): void {
    const row = this.repo.byFingerprint(fingerprint);
    if (row) this.repo.touch(row.id, new Date());
  }

  /** Stores a paired client: every permission when it is the first, `view` only otherwise; re-pairing keeps its permissions. */
  add(name: string, certPem: string, fingerprint: string): PairingRow {
    this.ders.delete(fingerprint);
    this.perms.delete(fingerprint);
    return this.repo.upsert({ name, certPem, fingerprint, permissions: permissionsForNewPairing });
  }

  /** What the client may do; null when no pairing has that fingerprint (nothing is allowed). */
  permissionsOf(fingerprint: string): ReadonlySet<GsPermission> | null {
    let p = this.perms.get(fingerprint);
    if (p === undefined) {
      const row = this.repo.byFingerprint(fingerprint);
      p = row ? new Set(normalizePermissions(row.permissions)) : null;
      this.perms.set(fingerprint, p);
    }
    return p;
  }

  allows(fingerprint: string, permission: GsPermission): boolean {
    return this.permissionsOf(fingerprint)?.has(permission) ?? false;
  }

  get(id: number): PairingRow | null {
    return this.repo.get(id) ?? null;
  }

  setPermissions(id: number, permissions: readonly GsPermission[]): PairingRow | null {
    const row = this.repo.setPermissions(id, normalizePermissions(permissions));
    if (row) this.perms.delete(row.fingerprint);
    return row ?? null;
  }

  /** Removes the pairing with that fingerprint; its row, or null when there was none. */
  remove(fingerprint: string): PairingRow | null {
    this.ders.delete(fingerprint);
    this.perms.delete(fingerprint);
    const row = this.repo.byFingerprint(fingerprint);
    if (!row) return null;
    this.repo.remove(row.id);
    return row;
  }

  removeById(id: number): PairingRow | null {
    const row = this.repo.get(id);
    if (!row) return null;
    this.ders.delete(row.fingerprint);
    this.perms.delete(row.fingerprint);
    this.repo.remove(id);
    return row;
  }

  list(): PairingRow[] {
    return this.repo.list();
  }
}
