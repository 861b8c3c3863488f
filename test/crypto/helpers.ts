/** Shared helpers of the crypto tests: hex, the real `openssl` CLI in a temp dir. */
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/[\s:]/g, ""), "hex"));

/** Runs the real openssl CLI in `cwd`; throws with its stderr on a non-zero exit. */
export function openssl(cwd: string, args: string[], stdin?: Uint8Array): { stdout: Buffer; stderr: string } {
  const proc = Bun.spawnSync(["openssl", ...args], { cwd, stdin: stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed (${proc.exitCode}): ${proc.stderr.toString()}`);
  return { stdout: proc.stdout, stderr: proc.stderr.toString() };
}

/** A temp dir for openssl's files, removed by cleanup(). */
export function workDir(): { path: string; file(name: string): string; cleanup(): void } {
  const d = tempDir("neuron-crypto-");
  return { path: d.path, file: (name) => join(d.path, name), cleanup: d.cleanup };
}
