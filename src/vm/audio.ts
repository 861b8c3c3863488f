/**
 * A VM's sound: an emulated ich9 HDA whose output goes to a sink of its own on the desktop
 * user's PulseAudio/PipeWire server (`neuron-vm-<name>`), so a stream of that VM can capture that
 * VM's sound only (the sink's monitor), never the host's mix or another VM's.
 */
import { execFile, firstLine } from "../exec.ts";
import { AppError } from "../errors.ts";

export function vmAudioSink(vm: string): string {
  return `neuron-vm-${vm}`;
}

/** The monitor source of a VM's sink: what a capture of that VM's sound records. */
export function vmAudioMonitor(vm: string): string {
  return `${vmAudioSink(vm)}.monitor`;
}

/** The PulseAudio socket of a desktop user (PipeWire's pulse server listens there too). */
export function pulseServerOf(uid: number): string {
  return `/run/user/${uid}/pulse/native`;
}


const SINK_RE = /^[A-Za-z0-9._-]{1,128}$/;

async function pactl(bin: string, server: string, args: string[]): Promise<string> {
  const r = await execFile([bin, `--server=unix:${server}`, ...args], { timeoutMs: 5000 });
  if (r.spawnError) throw new AppError("AUDIO_UNAVAILABLE", `cannot run ${bin}: ${r.spawnError}`, { status: 503 });
  if (r.code !== 0) throw new AppError("AUDIO_UNAVAILABLE", `${bin} ${args[0]}: ${firstLine(r.stderr) || (r.timedOut ? "timed out" : `exit ${r.code}`)}`, { status: 503 });
  return r.stdout;
}

/** Whether the pulse server at `server` has a sink named `sink`. */
export async function sinkExists(bin: string, server: string, sink: string): Promise<boolean> {
  const out = await pactl(bin, server, ["list", "short", "sinks"]);
  return out.split("\n").some((l) => l.split("\t")[1] === sink);
}

/**
 * The VM's own sink on the desktop user's server (a null sink: nothing plays it on the host's
 * speakers; streams of that VM record its monitor). Created once; true when it was created now.
 */
export async function ensureVmSink(bin: string, server: string, vm: string): Promise<boolean> {
  const sink = vmAudioSink(vm);
  if (!SINK_RE.test(sink)) throw new AppError("INVALID_INPUT", `bad sink name ${JSON.stringify(sink)}`, { status: 422 });
  if (await sinkExists(bin, server, sink)) return false;
  await pactl(bin, server, ["load-module", "module-null-sink", `sink_name=${sink}`, "rate=48000", "channels=2", `sink_properties=device.description=NeuronOS-VM-${vm}`]);
  return true;
}
