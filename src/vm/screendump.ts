/**
 * A VM's screen as QEMU renders its display (QMP `screendump`, PNG): the preview of a VM whose
 * Looking Glass host does not run (yet), e.g. during firmware and Windows setup. QEMU writes the
 * file into the QMP directory (its own, so it may write there); it is read and removed at once.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { vmQmpSocket } from "./qmp-socket.ts";

const MAX_SCREENDUMP_BYTES = 16 * 1024 * 1024;

export async function qmpScreendump(qmpDir: string, vm: string, timeoutMs = 2000): Promise<Uint8Array | null> {
  const socketPath = vmQmpSocket(qmpDir, vm);
  if (!existsSync(socketPath)) return null;
  const file = join(qmpDir, `${vm}.preview-${process.pid}.png`);
  // loaded on first use: the service starts without the QMP client
  const { QmpClient } = await import("../input/qmp-client.ts");
  const qmp = new QmpClient({ socketPath, timeoutMs, connectTimeoutMs: timeoutMs });
  try {
    await qmp.connect();
    await qmp.execute("screendump", { filename: file, format: "png" });
    const bytes = readFileSync(file);
    return bytes.length > 0 && bytes.length <= MAX_SCREENDUMP_BYTES ? new Uint8Array(bytes) : null;
  } catch {
    return null;
  } finally {
    qmp.close();
    rmSync(file, { force: true });
  }
}
