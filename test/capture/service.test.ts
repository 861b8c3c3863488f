/** CaptureService, the FrameSource contract on the KVMFR backend, the capture API and CLI. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { CaptureService } from "../../src/capture/service.ts";
import { KvmfrFrameSource } from "../../src/capture/source.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { AppError } from "../../src/errors.ts";
import { runCli, testCore } from "../helpers/env.ts";
import { probeStream } from "./ffmpeg.ts";
import { loadCaptureNative, spawnProducer } from "./helpers.ts";
import { frameSourceContract, producerFixture } from "./source-contract.ts";
import { asRoot } from "../helpers/api.ts";

const shmDir = mkdtempSync("/dev/shm/neuron-capture-test-");
const native = loadCaptureNative();
const service = new CaptureService(shmDir, resolveNativePath({}));
afterAll(() => {
  service.close();
  native.close();
  rmSync(shmDir, { recursive: true, force: true });
});

let n = 0;
async function producerIn(opts: Parameters<typeof spawnProducer>[1]) {
  const name = `src-${++n}`;
  const producer = await spawnProducer(join(shmDir, name), opts);
  return { name, path: join(shmDir, name), producer };
}

function appError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected an AppError");
}

frameSourceContract("kvmfr", async () => {
  const { path, producer } = await producerIn({ width: 320, height: 240, fps: 120 });
  const source = new KvmfrFrameSource(native, path);
  return producerFixture(source, producer, path, 320, 240);
});

describe("CaptureService", () => {
  test("encoder probe reports the choice and every candidate's reason", () => {
    const h264 = service.probeEncoders("h264");
    expect(h264.chosen).toBe("libx264");
    expect(h264.candidates.map((c) => c.name)).toEqual(["h264_nvenc", "h264_vaapi", "libx264"]);
    expect(h264.candidates.find((c) => c.name === "h264_nvenc")).toMatchObject({ status: "unavailable" });
    expect(h264.candidates.every((c) => c.reason.length > 0)).toBe(true);
    expect(service.probeEncoders("hevc").chosen).toBe("libx265");
  });

  test("inspects a live source; refuses bad names, missing files, other versions and garbage", async () => {
    const { name, producer } = await producerIn({ width: 320, height: 240, fps: 60 });
    const bad = await producerIn({ width: 320, height: 240, fps: 60, fault: "wrongVersion" });
    try {
      const status = service.inspectSource(name, 2000);
      expect(status).toMatchObject({ name, kind: "kvmfr", lgmpVersion: 6, kvmfrVersion: 20 });
      expect(status.frame).toMatchObject({ type: "BGRA", width: 320, height: 240, rotation: 0, flags: [] });
      for (const evil of ["../etc", "a/b", ".hidden", "", "x".repeat(65)])
        expect(appError(() => service.inspectSource(evil)).errorCode).toBe("INVALID_INPUT");
      expect(appError(() => service.inspectSource("absent")).errorCode).toBe("CAPTURE_SOURCE_NOT_FOUND");
      const mismatch = appError(() => service.inspectSource(bad.name, 500));
      expect(mismatch.errorCode).toBe("CAPTURE_VERSION_MISMATCH");
      expect(mismatch.message).toContain("version 7");
      expect(mismatch.message).toContain("version 6");
      writeFileSync(join(shmDir, "junk"), new Uint8Array(1 << 16).fill(0xa5));
      expect(appError(() => service.inspectSource("junk", 100)).errorCode).toBe("CAPTURE_BAD_REGION");
      writeFileSync(join(shmDir, "silent"), new Uint8Array(1 << 16));
      expect(appError(() => service.inspectSource("silent", 100)).errorCode).toBe("CAPTURE_NO_PRODUCER");
      expect(appError(() => service.inspectSource(name, 999999)).errorCode).toBe("INVALID_INPUT");
    } finally {
      await producer.stop();
      await bad.producer.stop();
    }
  });

  test("demo: synthetic producer through the pipeline; bad settings change nothing", async () => {
    const chunks: Uint8Array[] = [];
    const r = await service.runDemo({ width: 320, height: 240, fps: 120, frames: 24 }, (d) => chunks.push(d.slice()));
    expect(r).toMatchObject({ encoder: "libx264", codec: "h264", width: 320, height: 240, accessUnits: 24 });
    expect(r.idrUnits).toBeGreaterThanOrEqual(1);
    expect(r.bytes).toBe(chunks.reduce((s, c) => s + c.length, 0));
    expect(r.latencyMs.p50).toBeGreaterThan(0);
    const file = join(shmDir, "demo.h264");
    writeFileSync(file, Buffer.concat(chunks));
    expect(await probeStream(file, "h264")).toMatchObject({ width: 320, height: 240, frames: 24 });
    const first = service.runDemo({ width: 128, height: 128, fps: 120, frames: 5 });
    await expect(service.runDemo({ width: 128, height: 128, frames: 5 })).rejects.toThrow("already running");
    expect((await first).accessUnits).toBe(5);
    await expect(service.runDemo({ frames: 0 })).rejects.toThrow("frames");
    await expect(service.runDemo({ width: 10 })).rejects.toThrow("width");
  });
});

describe("capture API", () => {
  const ctx = testCore({ shmDir });
  const app = createApp(ctx.core);
  afterAll(() => ctx.cleanup());
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.handle(
      asRoot(new Request(`http://localhost/api/v1${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      })),
    );
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  test("GET /capture/encoders", async () => {
    const r = await call("GET", "/capture/encoders?codec=h264");
    expect(r.status).toBe(200);
    expect(r.body.chosen).toBe("libx264");
    expect((await call("GET", "/capture/encoders?codec=vp9")).status).toBe(422);
  });

  test("GET /capture/sources/:name errors map to codes", async () => {
    expect((await call("GET", "/capture/sources/absent")).body.error.code).toBe("CAPTURE_SOURCE_NOT_FOUND");
    expect((await call("GET", "/capture/sources/absent")).status).toBe(404);
    expect((await call("GET", "/capture/sources/.hidden")).status).toBe(422);
    expect((await call("GET", "/capture/sources/x?timeoutMs=1")).status).toBe(422);
  });

  test("POST /capture/demo runs bounded; invalid bodies are 422", async () => {
    const r = await call("POST", "/capture/demo", { width: 256, height: 144, fps: 120, frames: 10 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accessUnits: 10, width: 256, height: 144 });
    expect((await call("POST", "/capture/demo", { frames: 100000 })).status).toBe(422);
    expect((await call("POST", "/capture/demo", { evil: 1 })).status).toBe(422);
  });
});

describe("capture CLI", () => {
  test("encoders --json, demo --out writes a decodable stream, bad usage exits 2", async () => {
    const enc = runCli(["capture", "encoders", "--codec", "h264", "--no-measure", "--json"]);
    expect(enc.code).toBe(0);
    expect(JSON.parse(enc.stdout).codecs[0].chosen).toBe("libx264");
    const out = join(shmDir, "cli.h264");
    const demo = runCli(["capture", "demo", "--width", "320", "--height", "240", "--frames", "15", "--out", out, "--shm-dir", shmDir]);
    expect(demo.code).toBe(0);
    expect(demo.stdout).toContain("15 access units");
    expect(await probeStream(out, "h264")).toMatchObject({ width: 320, height: 240, frames: 15 });
    expect(readFileSync(out).length).toBeGreaterThan(0);
    expect(runCli(["capture", "bogus"]).code).toBe(2);
    expect(runCli(["capture", "demo", "--frames", "abc"]).code).toBe(2);
    const bad = runCli(["capture", "demo", "--frames", "0", "--shm-dir", shmDir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("frames");
  });
});

describe("doctor check", () => {
  test("reports the encoder chosen and why the others were not", async () => {
    const { checkVideoEncoder } = await import("../../src/capture/doctor.ts");
    const c = checkVideoEncoder(resolveNativePath({}), shmDir);
    expect(c.id).toBe("encoder");
    expect(c.detail).toContain("h264_nvenc");
    // a software choice is a warning, a hardware one is fine
    expect(c.status).toBe(c.detail.startsWith("lib") ? "warn" : "ok");
    expect(checkVideoEncoder(null, shmDir).status).toBe("fail");
  });
});
