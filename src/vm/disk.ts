/** VM disk images through qemu-img (config.bin.qemuImg). */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { AppError } from "../errors.ts";
import { execFile, firstLine } from "../exec.ts";

export async function createQcow2(qemuImg: string, path: string, sizeGiB: number): Promise<void> {
  if (!Number.isInteger(sizeGiB) || sizeGiB < 1 || sizeGiB > 65536)
    throw new AppError("DISK_SIZE_INVALID", `disk size ${sizeGiB} GiB is out of range (1..65536)`, { status: 422 });
  if (existsSync(path)) throw new AppError("CONFLICT", `disk image ${path} already exists; use it as an existing disk or remove it`, { status: 409 });
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  const res = await execFile([qemuImg, "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,preallocation=off", path, `${sizeGiB}G`], { timeoutMs: 60_000 });
  if (res.spawnError) throw new AppError("DISK_CREATE_FAILED", `cannot run ${qemuImg}: ${res.spawnError}`, { status: 500 });
  if (res.code !== 0) {
    rmSync(path, { force: true });
    throw new AppError("DISK_CREATE_FAILED", `qemu-img could not create ${path}: ${firstLine(res.stderr) || (res.timedOut ? "timed out" : "failed")}`, { status: 500 });
  }
}

export interface ImageInfo {
  format: string;
  virtualSize: number;
}

export async function imageInfo(qemuImg: string, path: string): Promise<ImageInfo> {
  const res = await execFile([qemuImg, "info", "--output=json", "-U", path], { timeoutMs: 30_000 });
  if (res.code !== 0) throw new AppError("DISK_INVALID", `${path}: ${firstLine(res.stderr) || "not a readable disk image"}`, { status: 422 });
  const info = JSON.parse(res.stdout) as { format?: unknown; "virtual-size"?: unknown };
  return { format: String(info.format), virtualSize: Number(info["virtual-size"]) };
}
