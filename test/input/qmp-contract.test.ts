/** The QMP backend runs the shared InputBackend contract against a real QEMU. */
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { VK_QCODE_ENTRIES } from "../../src/input/vk-qcode.ts";
import { tempDir } from "../helpers/env.ts";
import { inputBackendContract, type ObservedKey } from "./backend-contract.ts";
import { qemuAvailable, startQemu } from "./qemu.ts";

// qcode → the VK the contract sends for it (left/right-specific VKs win over generic ones)
const QCODE_TO_VK = new Map<string, number>();
for (const [vk, , q] of VK_QCODE_ENTRIES) if (vk >= 0x20 || !QCODE_TO_VK.has(q)) QCODE_TO_VK.set(q, vk);

inputBackendContract(
  "qmp",
  async () => {
    const dir = tempDir("neuron-input-contract-");
    const vm = await startQemu(dir.path);
    return {
      backend: new QmpInputBackend({ socketPath: vm.socketPath }),
      observedKeys: () =>
        vm.trace().flatMap((e): ObservedKey[] => (e.ev === "key" ? [{ vk: QCODE_TO_VK.get(e.qcode) ?? -1, down: e.down }] : [])),
      async teardown() {
        await vm.stop();
        dir.cleanup();
      },
    };
  },
  qemuAvailable() ? {} : { skip: "qemu-system-x86_64 is not installed" },
);
