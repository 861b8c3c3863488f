/**
 * Input over the control stream reaches a real QEMU: the session's VM has a QMP socket at
 * <qmpDir>/<vm>.qmp (the default backend finds it), and QEMU's own input trace shows
 * the keys, motion and buttons the client sent.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { enetAvailable } from "../../ffi/enet.ts";
import { ControlType } from "../../src/gamestream/control/envelope.ts";
import { encodeInputEvent } from "../../src/input/encode.ts";
import { tempDir } from "../helpers/env.ts";
import { qemuAvailable, startQemu, waitFor, type TestQemu } from "../input/qemu.ts";
import { ControlTestClient } from "./control-client.ts";
import { controlHost, launchSession } from "./control-helpers.ts";

const why = !enetAvailable() ? "libenet.so.7 is not installed" : !qemuAvailable() ? "qemu-system-x86_64 is not installed" : null;
if (why) console.warn(`skipping control-stream input tests: ${why}`);

describe.skipIf(why !== null)("control stream input → QMP of the session's VM", () => {
  const dir = tempDir("neuron-ctl-input-");
  let host: ReturnType<typeof controlHost>;
  let vm: TestQemu;
  let client: ControlTestClient;

  beforeAll(async () => {
    const qmpDir = join(dir.path, "qmp");
    mkdirSync(qmpDir, { recursive: true });
    vm = await startQemu(qmpDir, "win11");
    host = controlHost({ stateDir: dir.path, qmpDir });
    await host.service.start();
  });
  afterAll(async () => {
    client?.close();
    await host?.close();
    await vm?.stop();
    dir.cleanup();
  });

  test("keys, relative motion and a button arrive in QEMU's input layer; the end releases held keys", async () => {
    const { key, session } = launchSession(host, "win11");
    client = new ControlTestClient(key);
    expect(await client.connect(host.service.ports.control, session.connectData)).toBe(true);
    const stats = () => host.service.control!.stats(session.id);
    await waitFor(() => stats()?.input !== null && stats()?.input !== undefined, 5000, "QMP input backend");
    const send = (ev: Parameters<typeof encodeInputEvent>[0]) => client.send(ControlType.INPUT, encodeInputEvent(ev), { channel: 2 });
    send({ kind: "key", down: true, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });
    send({ kind: "key", down: false, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });
    send({ kind: "mouseMoveRel", dx: 7, dy: -4 });
    send({ kind: "mouseButton", down: true, button: "left" });
    send({ kind: "mouseButton", down: false, button: "left" });
    send({ kind: "key", down: true, vk: 0x10, keyCode: 0x10, modifiers: 0, flags: 0 }); // shift held at the end
    const seen = () => vm.trace().filter((e) => e.ev !== "sync");
    await waitFor(() => seen().length >= 7, 5000, "QEMU input trace");
    expect(seen().slice(0, 7)).toEqual([
      { ev: "key", qcode: "a", down: true },
      { ev: "key", qcode: "a", down: false },
      { ev: "rel", axis: "x", value: 7 },
      { ev: "rel", axis: "y", value: -4 },
      { ev: "btn", button: "left", down: true },
      { ev: "btn", button: "left", down: false },
      { ev: "key", qcode: "shift", down: true },
    ]);
    expect(stats()!.input).toMatchObject({ packets: 6, events: 6 });
    host.service.endSession();
    await waitFor(() => seen().some((e) => e.ev === "key" && e.qcode === "shift" && !e.down), 5000, "shift released at session end");
  });
});
