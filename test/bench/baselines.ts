/**
 * Benchmark-only native baselines (native/bench/baselines.c, built by `make -C native bench`
 * into native/build/bench/libneuron_bench.so, never part of libneuron.so): ISA-L's usual
 * erasure decode and OpenSSL's EVP AES-128-GCM per-packet loop in process.
 */
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";

const NATIVE_DIR = join(import.meta.dir, "../../native");
const LIB = join(NATIVE_DIR, "build/bench/libneuron_bench.so");

const P = FFIType.ptr;
const symbols = {
  bench_isal_decode: { args: [P, FFIType.i32, FFIType.i32, FFIType.i32, P, P, FFIType.i32, FFIType.i32, P, P, P], returns: FFIType.i32 },
  bench_gcm_new: { args: [P], returns: P },
  bench_gcm_free: { args: [P], returns: FFIType.void },
  bench_gcm_seal: { args: [P, FFIType.i32, FFIType.i32, P, P, P, FFIType.u64], returns: FFIType.i32 },
  bench_gcm_open: { args: [P, FFIType.i32, FFIType.i32, P, P, P, FFIType.u64], returns: FFIType.i32 },
} as const;

export type BenchBaselines = ReturnType<typeof dlopen<typeof symbols>>;

/** Builds (make is a no-op when up to date) and opens the baselines; null with the reason on stderr. */
export function openBaselines(): BenchBaselines | null {
  const make = Bun.spawnSync(["make", "-C", NATIVE_DIR, "--no-print-directory", "bench"], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  if (make.exitCode !== 0 || !existsSync(LIB)) {
    console.error(`bench baselines not built (make -C native bench): ${make.stderr.toString().trim().split("\n").at(-1) ?? ""}`);
    return null;
  }
  try {
    return dlopen(LIB, symbols);
  } catch (err) {
    console.error(`bench baselines not loadable: ${(err as Error).message}`);
    return null;
  }
}
