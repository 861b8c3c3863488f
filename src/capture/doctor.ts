/** Doctor checks: which H.264 encoder the pipeline would use here, and why. */
import type { CodecSupportReport, CodecVerdict } from "../gamestream/codecs.ts";
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



/** Doctor check: which codecs Moonlight clients are offered, from the measured encoder speeds. */
export function checkCodecs(report: CodecSupportReport | null, error?: string): DoctorCheck {
  const base = { id: "codecs", title: "Codecs offered to clients" };
  if (!report) return { ...base, status: "fail", detail: `codec measurement failed: ${error ?? "no report"}` };
  if (!report.measured) return { ...base, status: "ok", detail: "still measuring the encoders; H.264 only meanwhile" };
  const part = (v: CodecVerdict) => {
    const speeds = v.modes.map((m) => `${m.mode} ${m.measuredFps ?? "-"} fps`).join(", ");
    return `${v.codec.toUpperCase()} ${v.advertised ? "offered" : "not offered"}: ${v.reason}${speeds && !v.reason.includes(speeds) ? ` [${speeds}]` : ""}`;
  };
  const h264 = report.codecs.find((v) => v.codec === "h264");
  const h264Slow = !h264 || !h264.advertised || (h264.state === "done" && !h264.hardware && h264.modes.some((m) => !m.sustains));
  return { ...base, status: h264Slow ? "warn" : "ok", detail: report.codecs.map(part).join("; ") };
}
