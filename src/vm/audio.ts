/**
 * A VM's sound: an emulated ich9 HDA whose output goes to a sink of its own on the desktop
 * user's PulseAudio/PipeWire server (`neuron-vm-<name>`), so a stream of that VM can capture that
 * VM's sound only (the sink's monitor), never the host's mix or another VM's.
 */
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
