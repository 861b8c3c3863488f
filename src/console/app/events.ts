/**
 * The live event stream (/api/v1/events, server-sent events). One EventSource for the page;
 * the browser reconnects by itself and sends Last-Event-ID, so nothing is missed. Pages subscribe
 * by type prefix and unsubscribe when they leave. The console never polls.
 */
export interface LiveEvent<T = unknown> {
  id: number | null;
  type: string;
  at?: string;
  data: T;
}

type Listener = (e: LiveEvent) => void;
const listeners = new Map<Listener, string[]>();
const stateListeners = new Set<(s: "live" | "connecting" | "down") => void>();
let source: EventSource | null = null;
export let lastEventAt = 0;

export function connect(): void {
  if (source) return;
  source = new EventSource("/api/v1/events?as=message");
  const report = (s: "live" | "connecting" | "down") => stateListeners.forEach((f) => f(s));
  source.onopen = () => report("live");
  source.onerror = () => report(source?.readyState === EventSource.CLOSED ? "down" : "connecting");
  source.onmessage = (m) => {
    let e: LiveEvent;
    try {
      e = JSON.parse(m.data) as LiveEvent;
    } catch {
      return;
    }
    lastEventAt = performance.now();
    for (const [fn, prefixes] of [...listeners]) if (prefixes.some((p) => e.type.startsWith(p) || e.type === "reset")) fn(e);
  };
}

export function disconnect(): void {
  source?.close();
  source = null;
}

/** fn hears every event whose type starts with one of the prefixes (and `reset`); returns the unsubscribe. */
export function on(prefixes: string[], fn: Listener): () => void {
  listeners.set(fn, prefixes);
  return () => void listeners.delete(fn);
}

export function onState(fn: (s: "live" | "connecting" | "down") => void): () => void {
  stateListeners.add(fn);
  return () => void stateListeners.delete(fn);
}
