/** Real ffprobe/ffmpeg (Debian's ffmpeg package) to check encoder output. */
import { execFile } from "../../src/exec.ts";

export interface ProbedStream {
  codec: string;
  width: number;
  height: number;
  frames: number;
  keyFrames: number[];
}

/** Decodes the whole Annex-B file with ffprobe: stream size, frame count and key frame indices. */
export async function probeStream(file: string, format: "h264" | "hevc"): Promise<ProbedStream> {
  const r = await execFile(
    ["ffprobe", "-v", "error", "-f", format, "-select_streams", "v:0", "-show_frames", "-show_entries",
      "stream=codec_name,width,height:frame=key_frame,pict_type", "-of", "json", file],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0) throw new Error(`ffprobe failed (${r.code}): ${r.spawnError ?? r.stderr}`);
  const j = JSON.parse(r.stdout) as {
    streams: { codec_name: string; width: number; height: number }[];
    frames: { key_frame: number }[];
  };
  const s = j.streams[0]!;
  return {
    codec: s.codec_name,
    width: s.width,
    height: s.height,
    frames: j.frames.length,
    keyFrames: j.frames.flatMap((f, i) => (f.key_frame === 1 ? [i] : [])),
  };
}

/** Decodes to raw BGRA frames. */
export async function decodeBgra(file: string, format: "h264" | "hevc", out: string): Promise<void> {
  const r = await execFile(["ffmpeg", "-v", "error", "-y", "-f", format, "-i", file, "-f", "rawvideo", "-pix_fmt", "bgra", out], {
    timeoutMs: 60_000,
  });
  if (r.code !== 0) throw new Error(`ffmpeg failed (${r.code}): ${r.spawnError ?? r.stderr}`);
}
