/**
 * The FrameSource contract every frame-source backend runs: attach, frames in
 * order with a bounded wait, buffer-size errors, a bounded timeout when the
 * producer is gone, idempotent close.
 */
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type { FrameSource } from "../../src/capture/source.ts";

export interface ContractFixture {
  source: FrameSource;
  width: number;
  height: number;
  /** Stops the producer behind the source. */
  stopProducer(): Promise<void>;
  cleanup(): Promise<void>;
}

/** The fixture for a source reading `path`, which a producer writes until stopped (once). */
export function producerFixture(source: FrameSource, producer: { stop(): Promise<unknown> }, path: string, width: number, height: number): ContractFixture {
  let stopped = false;
  return {
    source,
    width,
    height,
    async stopProducer() {
      stopped = true;
      await producer.stop();
    },
    async cleanup() {
      source.close();
      if (!stopped) await producer.stop();
      rmSync(path, { force: true });
    },
  };
}

export function frameSourceContract(name: string, make: () => Promise<ContractFixture>): void {
  test(`${name}: attaches and delivers frames in order, bounded`, async () => {
    const f = await make();
    try {
      f.source.attach(2000);
      const buf = new Uint8Array(f.width * f.height * 4);
      let last = 0;
      let frames = 0;
      for (let i = 0; i < 200 && frames < 10; i++) {
        const ev = f.source.next(buf, 200);
        if (ev.kind !== "frame") continue;
        expect(ev.info.dataWidth).toBe(f.width);
        expect(ev.info.dataHeight).toBe(f.height);
        expect(ev.info.frameSerial).toBeGreaterThan(last);
        last = ev.info.frameSerial;
        frames++;
      }
      expect(frames).toBe(10);
      expect(f.source.stats().frames).toBe(10);
      expect(() => f.source.next(new Uint8Array(8), 500)).toThrow("needs");
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: a vanished producer gives bounded timeouts, not a hang`, async () => {
    const f = await make();
    try {
      f.source.attach(2000);
      await f.stopProducer();
      const buf = new Uint8Array(f.width * f.height * 4);
      // drain what was already posted, then every call returns within its bound
      for (let i = 0; i < 5; i++) f.source.next(buf, 20);
      const t0 = performance.now();
      const ev = f.source.next(buf, 100);
      expect(["timeout", "restarted"]).toContain(ev.kind);
      expect(performance.now() - t0).toBeLessThan(5000);
      f.source.close();
      f.source.close();
    } finally {
      await f.cleanup();
    }
  });
}
