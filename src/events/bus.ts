/**
 * The appliance's one in-process event bus: domain services publish what happened (VM state,
 * pairing requests, session statistics, setup/update/migration progress), the API's
 * `/api/v1/events` stream and other listeners subscribe. A short ring of recent events lets a
 * reconnecting subscriber catch up from the last id it saw (SSE `Last-Event-ID`).
 *
 * Event types are dotted, domain first: `vm.state`, `pairing.request`, `session.stats`,
 * `setup.step`, `update.progress`, `migration.progress`, ...
 */

export interface ApplianceEvent<T = unknown> {
  /** Increasing from 1 within one process. */
  id: number;
  type: string;
  /** ISO time of publication. */
  at: string;
  data: T;
}

export type EventListener = (event: ApplianceEvent) => void;

export class EventBus {
  private seq = 0;
  private readonly ring: ApplianceEvent[] = [];
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly keep = 512) {}

  publish<T>(type: string, data: T): ApplianceEvent<T> {
    const event: ApplianceEvent<T> = { id: ++this.seq, type, at: new Date().toISOString(), data };
    this.ring.push(event);
    if (this.ring.length > this.keep) this.ring.splice(0, this.ring.length - this.keep);
    for (const fn of [...this.listeners]) {
      try {
        fn(event);
      } catch {
        // a failing listener must not stop the publisher or the other listeners
      }
    }
    return event;
  }

  /** Events kept after `id` (oldest first). */
  since(id: number): ApplianceEvent[] {
    return this.ring.filter((e) => e.id > id);
  }

  /** Calls fn for every later event; returns the unsubscribe function. */
  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  get lastId(): number {
    return this.seq;
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }
}
