/**
 * lumen/1 PIN pairing on the host: a client without a pairing key waits (PairRequired) until
 * the PIN it shows is entered on the host — the same way as for Moonlight (`pair --pin`, the
 * pairing API, the console) — then both sides run SPAKE2 (spake2.ts). A wrong PIN fails the
 * client's confirmation and the attempt ends; attempts are bounded in number and time.
 */
import { randomBytes } from "node:crypto";
import { AppError } from "../errors.ts";

export interface LumenPairedClient {
  id: number;
  clientId: string;
  name: string;
  /** 32-byte pairing key (hex) from the SPAKE2 exchange: authenticates later connections. */
  pairingKey: string;
  createdAt: Date;
  lastSeenAt: Date | null;
}

/** Where paired clients are kept (the lumen_pairings table; a Map in tests). */
export interface LumenPairingStore {
  byClientId(clientId: string): LumenPairedClient | undefined;
  upsert(row: { clientId: string; name: string; pairingKey: string }): LumenPairedClient;
  touch(clientId: string, at: Date): void;
  list(): LumenPairedClient[];
  remove(clientId: string): boolean;
}

export function memoryPairingStore(): LumenPairingStore {
  const rows = new Map<string, LumenPairedClient>();
  let next = 1;
  return {
    byClientId: (c) => rows.get(c),
    upsert(r) {
      const prev = rows.get(r.clientId);
      const row = { id: prev?.id ?? next++, createdAt: prev?.createdAt ?? new Date(), lastSeenAt: prev?.lastSeenAt ?? null, ...r };
      rows.set(r.clientId, row);
      return row;
    },
    touch(c, at) {
      const r = rows.get(c);
      if (r) r.lastSeenAt = at;
    },
    list: () => [...rows.values()],
    remove: (c) => rows.delete(c),
  };
}

export interface LumenPendingPairing {
  id: string;
  deviceName: string;
  remoteIp: string;
  createdAt: string;
  /** When the client's wait for the PIN ends. */
  expiresAt: string;
}

interface Waiting {
  info: LumenPendingPairing;
  resolve(pin: string): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export const MAX_PENDING = 4;

/** Clients waiting for their PIN to be entered on the host. */
export class PinWaiters {
  private readonly waiting = new Map<string, Waiting>();

  constructor(private readonly timeoutMs: number) {}

  /** Registers a waiting client; resolves with the PIN entered on the host. */
  wait(deviceName: string, remoteIp: string, signal: AbortSignal): { id: string; pin: Promise<string> } {
    if (this.waiting.size >= MAX_PENDING) throw new AppError("PAIRING_BUSY", `${MAX_PENDING} clients are already waiting for a PIN`, { status: 429 });
    const id = randomBytes(6).toString("hex");
    const pin = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new AppError("PAIRING_TIMEOUT", "no PIN was entered on the host in time", { status: 408 }));
      }, this.timeoutMs);
      this.waiting.set(id, { info: { id, deviceName, remoteIp, createdAt: new Date().toISOString(), expiresAt: new Date(Date.now() + this.timeoutMs).toISOString() }, resolve, reject, timer });
      signal.addEventListener("abort", () => this.cancel(id), { once: true });
    });
    return { id, pin };
  }

  cancel(id: string): void {
    const w = this.waiting.get(id);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(id);
    w.reject(new AppError("PAIRING_CANCELLED", "the client went away", { status: 410 }));
  }

  pending(): LumenPendingPairing[] {
    return [...this.waiting.values()].map((w) => w.info);
  }

  /** The PIN entered on the host for the one waiting client (or the one named); null when none waits. */
  submit(pin: string, attemptId?: string): LumenPendingPairing | null {
    if (!/^\d{4}$/.test(pin)) throw new AppError("PAIRING_PIN_INVALID", "the PIN must be 4 digits", { status: 422 });
    const list = [...this.waiting.values()].filter((w) => !attemptId || w.info.id === attemptId);
    if (list.length === 0) return null;
    if (list.length > 1) throw new AppError("PAIRING_AMBIGUOUS", `${list.length} clients are waiting for a PIN; name the attempt id`, { status: 409 });
    const w = list[0]!;
    clearTimeout(w.timer);
    this.waiting.delete(w.info.id);
    w.resolve(pin);
    return w.info;
  }
}
