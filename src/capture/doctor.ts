/** Doctor check: which H.264 encoder the pipeline would use here, and why. */
import type { DoctorCheck } from "../system/model.ts";
import { CaptureService } from "./service.ts";

export function checkVideoEncoder(nativePath: string | null, shmDir: string): DoctorCheck {
  const base = { id: "encoder", title: "Video encoder" };
  if (!nativePath) return { ...base, status: "fail", detail: "needs the native library (see above)" };
  const service = new CaptureService(shmDir, nativePath);
  try {
    const probe = service.probeEncoders("h264");
    const others = probe.candidates
      .filter((c) => c.status !== "chosen")
      .map((c) => `${c.name}: ${c.reason}`)
      .join("; ");
    if (!probe.chosen) return { ...base, status: "fail", detail: `no H.264 encoder opens (${others})` };
    const hardware = !probe.chosen.startsWith("lib");
    return {
      ...base,
      status: hardware ? "ok" : "warn",
      detail: `${probe.chosen} (${probe.reason})${others ? `; ${others}` : ""}`,
    };
  } catch (err) {
    return { ...base, status: "fail", detail: `encoder probe failed: ${(err as Error).message}` };
  } finally {
    service.close();
  }
}


