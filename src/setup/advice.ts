/** Plain-words advice for a failed step, from the domain error's stable code. */
import type { AppError } from "../errors.ts";
import type { StepId } from "./model.ts";

const BY_CODE: Record<string, string> = {
  ROOT_INVALID: "the configured system root holds no sys/ or proc/: check --root (or the root setting), then retry",
  NOT_FOUND: "the device or object named was not found: check the choice (setup options), then retry",
  NOT_A_GPU: "choose a GPU's address (neuron-appliance hardware lists them), then retry",
  GPU_IS_HOST: "that GPU drives the host's display: choose the other GPU, or move the host's display to it first",
  GPU_NOT_CANDIDATE: "choose another GPU (neuron-appliance hardware says why this one cannot be passed through)",
  GPU_IDS_SHARED: "both GPUs have the same ids: vfio-pci cannot take only one of them by id; use two different GPU models",
  GPU_UNREADABLE: "some functions of the GPU could not be read from sysfs: check the card, reboot, then retry",
  UNSUPPORTED_CONFIG: "a file setup must edit has a form it cannot edit safely: edit it by hand as the message says (or simplify it), then retry",
  TARGET_UNREADABLE: "a configuration file could not be read: check its permissions, then retry",
  CONFLICT: "a file changed since the plan was made: retry this step (it plans again)",
  APPLY_FAILED: "writing the configuration failed and was undone: check free space and permissions under /etc and /boot, then retry",
  LIBVIRT_UNAVAILABLE: "libvirt does not answer: start it (systemctl start libvirtd), then retry",
  LIBVIRT_ERROR: "libvirt refused the request: read its message, fix the cause, then retry",
  LIBVIRT_TIMEOUT: "libvirt did not answer in time: check that libvirtd runs (systemctl status libvirtd), then retry",
  VM_START_FAILED: "the VM did not start: read libvirt's message (often the GPU is still on its host driver, or memory is short), fix it, then retry",
  INVALID_INPUT: "a value was refused: correct it in the setup options, then retry",
  QEMU_IMG_FAILED: "creating the VM's disk image failed: check free space in the state directory, then retry",
  NATIVE_UNAVAILABLE: "the native library (libneuron.so) is missing: reinstall the appliance package, then retry",
  CAPTURE_SOURCE_NOT_FOUND: "the VM's shared memory file does not exist yet: start the VM, then retry",
};

const BY_STEP: Record<StepId, string> = {
  detect: "check that this runs on the machine itself (not in a container) with /sys and /proc readable, then retry",
  gpu: "choose a GPU with --gpu ADDR (neuron-appliance hardware lists them), then retry",
  "vfio-plan": "fix what the message names, then retry this step",
  "vfio-apply": "nothing half-written stays behind; fix what the message names, then retry this step",
  reboot: "reboot the machine, then advance again",
  verify: "fix what the checks report, reboot, then retry this step",
  vm: "fix what the message names (libvirt running, disk space), then retry this step",
  "install-media": "check the ISO paths (setup options), then retry this step",
  "first-boot": "start the VM by hand (neuron-appliance vm start NAME) to see libvirt's message, fix it, then retry",
  agent: "wait for Windows to finish installing, then retry this step",
  "looking-glass": "check that the Looking Glass host runs in the VM, then retry this step",
  app: "retry this step; if an app with that name exists, rename it",
  done: "retry",
};

export function adviceFor(step: StepId, err: AppError): string {
  return BY_CODE[err.errorCode] ?? BY_STEP[step];
}
