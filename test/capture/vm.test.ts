/**
 * The reader against the producer running inside a real QEMU guest (TCG), on
 * an ivshmem-plain device backed by the same /dev/shm file the host maps.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KvmfrReader } from "../../ffi/capture.ts";
import { buildInitramfs, busyboxAvailable, ensureKernel } from "./guest/image.ts";
import { loadCaptureNative, removeFile, shmPath } from "./helpers.ts";

const QEMU = "/usr/bin/qemu-system-x86_64";
const missing = !existsSync(QEMU) ? "qemu-system-x86_64 is not installed" : !busyboxAvailable() ? "busybox-static is not installed" : null;
if (missing) console.warn(`skipping the IVSHMEM guest test: ${missing}`);

const native = loadCaptureNative();
const dir = mkdtempSync(join(tmpdir(), "neuron-ivshmem-"));
afterAll(() => {
  native.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("IVSHMEM with a real guest", () => {
  test.skipIf(missing !== null)(
    "frames written by the producer inside a QEMU guest reach the host reader intact",
    async () => {
      const W = 320;
      const H = 240;
      const kernel = await ensureKernel();
      const initrd = await buildInitramfs(dir, W, H, 30, 6);
      const shm = shmPath("ivshmem");
      const size = native.regionSize(W, H);
      writeFileSync(shm, new Uint8Array(0));
      truncateSync(shm, size);
      const consoleLog = join(dir, "console.log");
      const qemu = Bun.spawn(
        [QEMU, "-accel", "tcg", "-machine", "q35", "-nodefaults", "-display", "none", "-m", "256", "-no-reboot",
          "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1",
          "-serial", `file:${consoleLog}`,
          "-object", `memory-backend-file,id=shm,share=on,mem-path=${shm},size=${size}`,
          "-device", "ivshmem-plain,memdev=shm"],
        { stdout: "ignore", stderr: "pipe" },
      );
      const reader = KvmfrReader.open(native, shm);
      try {
        // the guest boots (~6 s under TCG), then writes the header: attach waits for it
        let attached = -1;
        const end = Date.now() + 60_000;
        while (attached !== 0 && Date.now() < end && qemu.exitCode === null) {
          attached = reader.attach(500);
          if (attached !== 0) await Bun.sleep(200);
        }
        const log = () => (existsSync(consoleLog) ? readFileSync(consoleLog, "utf8").slice(-2000) : "(no console)");
        if (attached !== 0) throw new Error(`never attached (${attached}: ${reader.error()}); console:\n${log()}`);
        const buf = new Uint8Array(W * H * 4);
        const expected = new Uint8Array(W * H * 4);
        let frames = 0;
        let last = -1;
        for (let i = 0; i < 400 && frames < 10; i++) {
          const r = reader.nextFrame(buf, 200, 1000);
          if (r.event !== "frame" || !r.info) continue;
          const counter = native.testpatternCounter(buf, W, H, W * 4);
          native.testpatternFill(expected, W, H, W * 4, counter);
          expect(native.checksum(buf)).toBe(native.checksum(expected));
          expect(counter).toBeGreaterThan(last);
          last = counter;
          frames++;
        }
        expect(frames).toBe(10);
        expect(reader.stats()).toMatchObject({ lgmpVersion: 6, kvmfrVersion: 20 });
      } finally {
        reader.close();
        if (qemu.exitCode === null) qemu.kill();
        await qemu.exited;
        removeFile(shm);
      }
    },
    120_000,
  );
});
