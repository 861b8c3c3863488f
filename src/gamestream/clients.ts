/**
 * Paired Moonlight clients, matched by exact certificate: the SHA-256 of the
 * presented DER selects the stored pairing, and the stored certificate's DER
 * must equal the presented one byte for byte.
 */
import type { PairingRow, PairingsRepo } from "../db/repos/pairings.ts";
import type { GameStreamCrypto } from "./crypto.ts";
import { encodeHex, equalBytes } from "./hex.ts";

export class PairedClients {
  /** fingerprint → DER of the stored certificate (filled on first use). */
  private readonly ders = new Map<string, Uint8Array>();

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

  add(name: string, certPem: string, fingerprint: string): PairingRow {
    this.ders.delete(fingerprint);
    return this.repo.upsert({ name, certPem, fingerprint });
  }

  remove(fingerprint: string): boolean {
    this.ders.delete(fingerprint);
    return this.repo.removeByFingerprint(fingerprint);
  }

  removeById(id: number): PairingRow | null {
    const row = this.repo.get(id);
    if (!row) return null;
    this.ders.delete(row.fingerprint);
    this.repo.remove(id);
    return row;
  }

  list(): PairingRow[] {
    return this.repo.list();
  }
}
