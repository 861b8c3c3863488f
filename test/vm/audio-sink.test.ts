/**
 * Each VM's sound on its own sink of a real PulseAudio server: the sink is created once (at VM
 * start), a session of that VM records that sink's monitor, and what plays into another VM's
 * sink is not heard there.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { sourceForSession } from "../../src/gamestream/audio/service.ts";
import { captureCommand } from "../../src/gamestream/audio/source.ts";
import { ensureVmSink, sinkExists, vmAudioMonitor, vmAudioSink } from "../../src/vm/audio.ts";
import { tempDir } from "../helpers/env.ts";

const missing = ["pulseaudio", "pactl", "parec", "pacat"].filter((b) => !Bun.which(b));
if (missing.length) console.warn(`VM audio sink tests skipped: ${missing.join(", ")} not installed (pulseaudio, pulseaudio-utils)`);
const dir = tempDir("neuron-vm-sink-");
const socket = join(dir.path, "native");
const env = { HOME: dir.path, XDG_RUNTIME_DIR: dir.path, PATH: process.env.PATH ?? "/usr/bin:/bin" };
let server: Bun.Subprocess | null = null;

beforeAll(async () => {
  if (missing.length) return;
  server = Bun.spawn(
    ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes", "-L", `module-native-protocol-unix socket=${socket} auth-anonymous=1`, "-L", "module-null-sink sink_name=host"],
    { env, stdout: "ignore", stderr: "ignore" },
  );
  const until = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > until) throw new Error("pulseaudio did not create its socket");
    await Bun.sleep(50);
  }
});
afterAll(async () => {
  server?.kill();
  await server?.exited;
  dir.cleanup();
});

/** Mean absolute sample of `ms` of what parec records from `argv`. */
async function level(argv: string[], ms: number): Promise<number> {
  const p = Bun.spawn(argv, { env, stdout: "pipe", stderr: "ignore" });
  const timer = setTimeout(() => p.kill(), ms);
  const buf = new Uint8Array(await new Response(p.stdout).arrayBuffer());
  clearTimeout(timer);
  const pcm = new Int16Array(buf.buffer, 0, Math.floor(buf.length / 2));
  let sum = 0;
  for (const v of pcm) sum += Math.abs(v);
  return pcm.length ? sum / pcm.length : 0;
}

describe.skipIf(missing.length > 0)("a VM's own sink", () => {
  test("created once; a session of that VM records it; another VM's sound is not in it", async () => {
    expect(await ensureVmSink("pactl", socket, "a")).toBe(true);
    expect(await ensureVmSink("pactl", socket, "a")).toBe(false);
    expect(await ensureVmSink("pactl", socket, "b")).toBe(true);
    expect(await sinkExists("pactl", socket, vmAudioSink("a"))).toBe(true);

    const base = { pulseServer: socket };
    expect(await sourceForSession(base, "a")).toEqual({ ...base, device: vmAudioMonitor("a") });
    expect(await sourceForSession(base, "nosink")).toEqual(base);
    expect(await sourceForSession(base, null)).toEqual(base);
    expect(await sourceForSession({ ...base, command: ["cat"] }, "a")).toEqual({ ...base, command: ["cat"] });

    // a tone plays into VM b's sink only
    const tone = new Int16Array(48000 * 2 * 6);
    for (let i = 0; i < tone.length / 2; i++) tone[2 * i] = tone[2 * i + 1] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 48000));
    const player = Bun.spawn(["pacat", `--server=unix:${socket}`, `--device=${vmAudioSink("b")}`, "--raw", "--format=s16le", "--rate=48000", "--channels=2"], { env, stdin: "pipe", stdout: "ignore", stderr: "ignore" });
    player.stdin.write(new Uint8Array(tone.buffer));
    void Promise.resolve(player.stdin.end()).catch(() => {});
    try {
      const argvOf = async (vm: string) => (captureCommand(await sourceForSession(base, vm), 2) as { argv: string[] }).argv;
      const [a, b] = await Promise.all([level(await argvOf("a"), 3000), level(await argvOf("b"), 3000)]);
      expect(b).toBeGreaterThan(1000);
      expect(a).toBeLessThan(b / 50);
    } finally {
      player.kill();
      await player.exited;
    }
  }, 30_000);
});
