/** The first boot's key presses for the install ISO's prompt, through a real QEMU's QMP socket. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { pressBootKeys } from "../../src/setup/boot-keys.ts";
import { tempDir } from "../helpers/env.ts";

const qemu = Bun.which("qemu-system-x86_64");

describe.skipIf(!qemu)("boot keys (skipped: qemu-system-x86_64 not installed)", () => {
  test("waits for the socket QEMU creates, then sends Enter until the time is up; a socket that never comes fails", async () => {
    const d = tempDir();
    const socket = join(d.path, "vm.qmp");
    // started after the presses begin: the socket appears while pressBootKeys waits for it
    const pressing = pressBootKeys(socket, 1500, 200);
    await Bun.sleep(200);
    const vm = Bun.spawn([qemu!, "-accel", "tcg", "-machine", "q35", "-nodefaults", "-display", "none", "-S", "-device", "virtio-keyboard-pci", "-qmp", `unix:${socket},server=on,wait=off`], { stdout: "ignore", stderr: "pipe" });
    try {
      const sent = await pressing;
      expect(sent).toBeGreaterThanOrEqual(3);
      await expect(pressBootKeys(join(d.path, "none.qmp"), 300)).rejects.toThrow();
    } finally {
      vm.kill();
      await vm.exited;
      d.cleanup();
    }
  }, 20_000);
});
