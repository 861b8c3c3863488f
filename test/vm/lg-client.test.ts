/** The viewer supervisor against real processes: restart with backoff on crash, stop by PID. */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { lookingGlassClientArgv, ProcessSupervisor, type SupervisorEvent } from "../../src/vm/lg-client.ts";
import { tempDir } from "../helpers/env.ts";

const dir = tempDir("neuron-lgc-");
afterAll(() => dir.cleanup());

describe("looking-glass-client supervisor", () => {
  test("a crashing viewer is restarted with doubling delays until stopped", async () => {
    const log = join(dir.path, "runs");
    const events: SupervisorEvent[] = [];
    const sup = new ProcessSupervisor({ argv: ["sh", "-c", `echo run >> '${log}'; exit 3`], minBackoffMs: 20, maxBackoffMs: 80, onEvent: (e) => events.push(e) });
    sup.start();
    const deadline = Date.now() + 10_000;
    while (sup.restarts < 4 && Date.now() < deadline) await Bun.sleep(10);
    await sup.stop();
    const runs = readFileSync(log, "utf8").trim().split("\n").length;
    expect(runs).toBeGreaterThanOrEqual(4);
    const delays = events.filter((e) => e.kind === "exited").map((e) => e.restartInMs);
    expect(delays.slice(0, 4)).toEqual([20, 40, 80, 80]);
    expect(events.filter((e) => e.kind === "exited").every((e) => e.exitCode === 3)).toBe(true);
    await Bun.sleep(200);
    expect(readFileSync(log, "utf8").trim().split("\n").length).toBe(runs);
    expect(sup.state).toBe("stopped");
  });

  test("stop ends the running viewer (its own PID) and it is not restarted", async () => {
    const sup = new ProcessSupervisor({ argv: ["sleep", "30"], minBackoffMs: 10 });
    sup.start();
    const pid = sup.pid!;
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    await sup.stop();
    await Bun.sleep(50);
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ")).toBe(false);
    expect(sup.restarts).toBe(0);
  });

  test("a viewer that is not installed: a clear error, nothing started", () => {
    const sup = new ProcessSupervisor({ argv: lookingGlassClientArgv("looking-glass-client-not-installed", "/x.ini") });
    expect(() => sup.start()).toThrow(/not installed/);
    expect(sup.state).toBe("stopped");
  });
});
