/**
 * The Windows install ISO's UEFI loader asks "Press any key to boot from CD or DVD" and, with no
 * key within a few seconds, goes on to the next boot device (the empty disk). On the first boot
 * the appliance presses a key through the VM's QMP monitor while that prompt may be up; later
 * boots (Setup's own reboots) get no key and start from the disk, as they must.
 */
import { QmpClient } from "../input/qmp-client.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Presses Enter every `intervalMs` for `durationMs` on the QMP socket; returns how many were sent. */
export async function pressBootKeys(socketPath: string, durationMs: number, intervalMs = 400): Promise<number> {
  const deadline = Date.now() + durationMs;
  // QEMU creates the socket as it starts: wait for it (bounded by the same deadline)
  let client: QmpClient | null = null;
  while (!client) {
    const c = new QmpClient({ socketPath, timeoutMs: 2000 });
    try {
      await c.connect();
      client = c;
    } catch (err) {
      c.close();
      if (Date.now() >= deadline) throw err;
      await sleep(100);
    }
  }
  let sent = 0;
  try {
    while (Date.now() < deadline) {
      await client.execute("send-key", { keys: [{ type: "qcode", data: "ret" }] });
      sent++;
      await sleep(intervalMs);
    }
  } finally {
    client.close();
  }
  return sent;
}
