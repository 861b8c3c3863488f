/**
 * Updates started from the API run in the background; their events are kept
 * per run (bounded) so a subscriber that comes late still gets them all,
 * then the live ones until the run is done.
 */
import type { EventBus } from "../events/bus.ts";
import type { UpdateEvent } from "./model.ts";
import type { RunOptions, UpdatesService } from "./service.ts";

const KEEP = 5000;

interface Channel {
  events: UpdateEvent[];
  done: boolean;
  listeners: Set<() => void>;
}

export class UpdateRuns {
  private readonly channels = new Map<number, Channel>();
  /** `events`: each run's events also go to the bus (update.output for pacman's lines, update.progress for the rest). */
  constructor(
    private readonly updates: UpdatesService,
    private readonly bus?: Pick<EventBus, "publish">,
  ) {}

  /** Starts an update; resolves with its id once it has a history row, rejects when it is refused. */
  start(opts: Omit<RunOptions, "onEvent" | "onStarted">): Promise<number> {
    let channel: Channel | null = null;
    let runId: number | null = null;
    const pending: UpdateEvent[] = [];
    const toBus = (e: UpdateEvent) => this.bus?.publish(e.type === "output" ? "update.output" : "update.progress", { id: runId, ...e });
    return new Promise<number>((resolve, reject) => {
      let started = false;
      this.updates
        .run({
          ...opts,
          onStarted: (id) => {
            started = true;
            runId = id;
            for (const e of pending) toBus(e);
            channel = { events: pending, done: false, listeners: new Set() };
            this.channels.set(id, channel);
            for (const old of [...this.channels.keys()].slice(0, -16)) this.channels.delete(old);
            resolve(id);
          },
          onEvent: (e) => {
            const c = channel;
            const list = c ? c.events : pending;
            list.push(e);
            if (list.length > KEEP) list.splice(0, list.length - KEEP);
            if (e.type === "done" && c) c.done = true;
            if (c) toBus(e);
            c?.listeners.forEach((l) => l());
          },
        })
        .catch((err) => {
          if (!started) reject(err);
          const c = channel as Channel | null;
          if (c) {
            const e: UpdateEvent = { type: "phase", phase: "error", message: (err as Error).message };
            c.events.push(e);
            toBus(e);
            c.done = true;
            c.listeners.forEach((l) => l());
          }
        });
    });
  }

  has(id: number): boolean {
    return this.channels.has(id);
  }

  /** The run's events from the first, then live, until it is done. */
  async *events(id: number, signal?: AbortSignal): AsyncGenerator<UpdateEvent> {
    const c = this.channels.get(id);
    if (!c) return;
    let i = 0;
    while (!signal?.aborted) {
      while (i < c.events.length) yield c.events[i++]!;
      if (c.done) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          c.listeners.delete(wake);
          resolve();
        };
        c.listeners.add(wake);
        signal?.addEventListener("abort", wake, { once: true });
      });
    }
  }
}
