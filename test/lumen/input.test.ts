/**
 * lumen/1 input into a VM: the service inside `serve` opens the QMP monitor of the VM named by
 * lumenInputVm (a real QEMU, its input_event_* trace as the witness) and the client's input
 * datagrams arrive there as relative mouse motion.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { EventBus } from "../../src/events/bus.ts";
import { silentLogger } from "../../src/log.ts";
import { LumenClient } from "../../src/lumen/client.ts";
import { memoryPairingStore } from "../../src/lumen/pairing.ts";
import { LumenService } from "../../src/lumen/service.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { testConfig } from "../helpers/env.ts";
import { qemuAvailable, startQemu, waitFor, type TestQemu } from "../input/qemu.ts";
import { buildNative, loadNatives, tempDir, testIdentity } from "./helpers.ts";

const skip = !qemuAvailable();

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

describe.skipIf(skip)("lumen/1 input into a VM's QMP monitor (skipped without qemu-system-x86_64)", () => {
  const dir = tempDir("lumen-input-");
  let vm: TestQemu;
  let service: LumenService;
  const events = new EventBus();

  beforeAll(async () => {
    buildNative();
    vm = await startQemu(dir.path, "vm");
    const config = testConfig({ stateDir: dir.path, qmpDir: dir.path, lumenInputVm: "vm", lumenHost: "127.0.0.1", lumenPort: await freePort() });
    service = new LumenService({ config, nativePath: resolveNativePath({}), identity: () => testIdentity(), store: memoryPairingStore(), events, log: silentLogger });
    await service.start();
  }, 30_000);
  afterAll(async () => {
    await service?.stop();
    await vm?.stop();
    dir[Symbol.dispose]();
  });

  test("mouse motion sent on the input plane moves the VM's pointer; the session's events reach the bus", async () => {
    using state = tempDir();
    const seen: string[] = [];
    events.subscribe((e) => void seen.push(e.type));
    const c = new LumenClient({ host: "127.0.0.1", port: service.running!.port, stateDir: state.path, pin: "3141", mode: { width: 320, height: 240, fps: 30 }, natives: loadNatives() });
    const pin = (async () => {
      for (let i = 0; i < 400 && service.pending().length === 0; i++) await Bun.sleep(5);
      service.submitPin("3141");
    })();
    await Promise.all([c.connect(), pin]);
    let sent = 0;
    await c.stream(1.3, (ms) => {
      if (ms > 200 && sent < 5) {
        c.sendInput({ kind: "mouseMoveRel", dx: 7, dy: -2 });
        sent++;
      }
    });
    c.close();
    // the backend may coalesce motion into fewer QMP events: the sum is what moved
    const sum = (axis: string) => vm.trace().reduce((a, e) => a + (e.ev === "rel" && e.axis === axis ? e.value : 0), 0);
    await waitFor(() => sum("x") === 35 && sum("y") === -10, 5000, "the pointer moved by 5 × (7, -2) in QEMU");
    expect(seen).toContain("pairing.request");
    expect(seen).toContain("lumen.session.started");
    expect(seen).toContain("session.stats");
    expect(seen).toContain("lumen.session.ended");
  }, 30_000);
});
