/** Shared helpers of the capture tests: the native library, a producer in another process, paths. */
import { existsSync, unlinkSync } from "node:fs";
import { resolveNativePath } from "../../ffi/native.ts";
import { CaptureNative, type ProducerOptions } from "../../ffi/capture.ts";

export function loadCaptureNative(): CaptureNative {
  return new CaptureNative(resolveNativePath({}));
}

let seq = 0;
/** A unique /dev/shm file name for one test (removed by cleanup()). */
export function shmPath(tag: string): string {
  return `/dev/shm/neuron-test-${tag}-${process.pid}-${++seq}`;
}

export function removeFile(path: string): void {
  if (existsSync(path)) unlinkSync(path);
}

export interface ProducerProcess {
  pid: number;
  stop(): Promise<void>;
}

/** Starts the synthetic producer in a separate bun process and waits until it is ready. */
export async function spawnProducer(
  path: string,
  opts: ProducerOptions & { layout?: "kvmfr" | "nfb" },
): Promise<ProducerProcess> {
  const proc = Bun.spawn([process.execPath, `${import.meta.dir}/producer-proc.ts`, path, JSON.stringify(opts)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 10_000;
  while (!text.includes("ready")) {
    if (Date.now() > deadline) {
      proc.kill();
      throw new Error("producer process did not become ready");
    }
    const { value, done } = await reader.read();
    if (done) throw new Error(`producer process exited early (code ${await proc.exited})`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    pid: proc.pid,
    async stop() {
      proc.stdin.end();
      const timer = setTimeout(() => proc.kill(), 3000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}

/** Independent reference of the test pattern's pixel at (x, y) for frame `n` (outside the counter squares). */
export function patternPixel(x: number, y: number, n: number): [number, number, number, number] {
  return [(x + 2 * n) & 0xff, (y + n) & 0xff, ((((x >> 4) ^ (y >> 4)) * 16) + n) & 0xff, 0xff];
}

/** Waits until `fn` is true or the time runs out. */
export async function until(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await Bun.sleep(5);
  }
  return fn();
}

/** Polls a capture pipeline until it has handed out count access units or ms passed; their bytes, in order. */
export async function collectAccessUnits(
  pipeline: { poll(dst: Uint8Array): { size: number } | null },
  count: number,
  ms: number,
  bufBytes = 4 << 20,
): Promise<Uint8Array[]> {
  const buf = new Uint8Array(bufBytes);
  const chunks: Uint8Array[] = [];
  const deadline = Date.now() + ms;
  while (chunks.length < count && Date.now() < deadline) {
    const au = pipeline.poll(buf);
    if (au) chunks.push(buf.slice(0, au.size));
    else await Bun.sleep(5);
  }
  return chunks;
}
