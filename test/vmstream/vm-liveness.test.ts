/**
 * When a VM source asks libvirt whether its VM still runs, and what it concludes.
 * The clock is the test's; the probe answers what a libvirt would (the real one is
 * exercised by vm-stream.test.ts and the virsh probe test below).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { silentLogger } from "../../src/log.ts";
import type { VmState } from "../../src/vm/model.ts";
import { VmLiveness } from "../../src/gamestream/video/vm-liveness.ts";
import { virshStateProbe } from "../../src/gamestream/video/vm-state.ts";
import { libvirtdUnavailable, startLibvirtd, type PrivateLibvirtd } from "../vm/libvirtd.ts";

function harness(answer: () => VmState | null | Error) {
  let now = 1_000_000;
  const asked: string[] = [];
  const live = new VmLiveness({
    vmName: "win11",
    log: silentLogger,
    stallMs: 1500,
    checkIntervalMs: 2000,
    now: () => now,
    probe: async (name) => {
      asked.push(name);
      const a = answer();
      if (a instanceof Error) throw a;
      return a;
    },
  });
  return { live, asked, advance: (ms: number) => void (now += ms) };
}

describe("VmLiveness", () => {
  test("frames flowing: libvirt is never asked", async () => {
    const h = harness(() => "running");
    for (let i = 1; i <= 100; i++) {
      expect(await h.live.sample({ framesIn: i, restarts: 0 })).toBeNull();
      h.advance(500);
    }
    expect(h.asked).toEqual([]);
  });

  test("a static screen with a live heartbeat (no frames, no restart): libvirt is never asked", async () => {
    const h = harness(() => "running");
    await h.live.sample({ framesIn: 10, restarts: 0 });
    for (let i = 0; i < 40; i++) {
      h.advance(500);
      expect(await h.live.sample({ framesIn: 10, restarts: 0 })).toBeNull();
    }
    expect(h.asked).toEqual([]);
  });

  test("heartbeat lost and no frame for 1.5 s: asked at most every 2 s; shut off ends with the reason", async () => {
    let state: VmState = "running";
    const h = harness(() => state);
    await h.live.sample({ framesIn: 10, restarts: 0 });
    h.advance(1000);
    expect(await h.live.sample({ framesIn: 10, restarts: 1 })).toBeNull(); // stalled, but not 1.5 s yet
    expect(h.asked).toEqual([]);
    h.advance(600);
    expect(await h.live.sample({ framesIn: 10, restarts: 1 })).toBeNull(); // asked: still running (rebooting guest)
    expect(h.asked).toEqual(["win11"]);
    h.advance(500);
    expect(await h.live.sample({ framesIn: 10, restarts: 1 })).toBeNull(); // too soon to ask again
    expect(h.asked.length).toBe(1);
    state = "shut off";
    h.advance(1600);
    expect(await h.live.sample({ framesIn: 10, restarts: 1 })).toBe("VM win11 shut down");
    expect(h.live.endReason).toBe("VM win11 shut down");
    // once ended, it stays ended without asking again
    expect(await h.live.sample({ framesIn: 10, restarts: 1 })).toBe("VM win11 shut down");
    expect(h.asked.length).toBe(2);
  });

  test("a guest that comes back (frames again) stops the questions", async () => {
    const h = harness(() => "running");
    await h.live.sample({ framesIn: 5, restarts: 0 });
    h.advance(2000);
    await h.live.sample({ framesIn: 5, restarts: 1 });
    expect(h.asked.length).toBe(1);
    await h.live.sample({ framesIn: 6, restarts: 2 }); // re-attached, frames again
    for (let i = 0; i < 10; i++) {
      h.advance(1000);
      await h.live.sample({ framesIn: 6, restarts: 2 });
    }
    expect(h.asked.length).toBe(1);
  });

  test("never attached (VM defined but its guest never wrote a frame): asked after the stall", async () => {
    const h = harness(() => "crashed");
    expect(await h.live.sample({ framesIn: 0, restarts: 0 })).toBeNull();
    h.advance(1600);
    expect(await h.live.sample({ framesIn: 0, restarts: 0 })).toBe("VM win11 crashed");
  });

  test("a VM that was off from the start: 'is not running'", async () => {
    const h = harness(() => "shut off");
    expect(await h.live.sample({ framesIn: 0, restarts: 0 })).toBeNull();
    h.advance(1600);
    expect(await h.live.sample({ framesIn: 0, restarts: 0 })).toBe("VM win11 is not running");
  });

  test("a domain that no longer exists", async () => {
    const h = harness(() => null);
    await h.live.sample({ framesIn: 0, restarts: 0 });
    h.advance(1600);
    expect(await h.live.sample({ framesIn: 0, restarts: 0 })).toBe("VM win11 no longer exists");
  });

  test("libvirt unreachable: the stream keeps waiting (no end), and asks again later", async () => {
    const h = harness(() => new Error("libvirt is not reachable"));
    await h.live.sample({ framesIn: 3, restarts: 0 });
    for (let i = 0; i < 10; i++) {
      h.advance(1000);
      expect(await h.live.sample({ framesIn: 3, restarts: 1 })).toBeNull();
    }
    expect(h.asked.length).toBe(5); // at 2, 4, 6, 8 and 10 s
    expect(h.live.endReason).toBeNull();
  });

  test("paused or in shutdown: not ended yet", async () => {
    for (const s of ["paused", "in shutdown", "pmsuspended", "blocked"] as VmState[]) {
      const h = harness(() => s);
      await h.live.sample({ framesIn: 0, restarts: 0 });
      h.advance(1600);
      expect(await h.live.sample({ framesIn: 0, restarts: 0 })).toBeNull();
      expect(h.asked.length).toBe(1);
    }
  });
});

const why = libvirtdUnavailable();
describe.skipIf(why !== null)("the virsh state probe on a real libvirtd", () => {
  let daemon: PrivateLibvirtd;
  beforeAll(async () => {
    daemon = await startLibvirtd();
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
  }, 30_000);

  test("a defined, stopped VM is 'shut off'; an unknown one is null; libvirt down throws", async () => {
    const virsh = daemon.virsh();
    await virsh.define(
      `<domain type="qemu"><name>probe</name><memory unit="MiB">64</memory><os><type arch="x86_64" machine="q35">hvm</type></os></domain>`,
    );
    const probe = virshStateProbe("virsh", daemon.uri);
    expect(await probe("probe")).toBe("shut off");
    expect(await probe("nope")).toBeNull();
    const down = virshStateProbe("virsh", `qemu:///system?socket=${daemon.dir}/no-such-socket`);
    await expect(down("probe")).rejects.toThrow(/not reachable|failed/i);
  }, 30_000);
});
