/** `setup` CLI: with the service running, the flow runs in the service (its events, its guard); without it, here. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startServer } from "../../src/api/server.ts";
import { run } from "../../src/cli/index.ts";
import type { SetupStatus } from "../../src/setup/model.ts";
import { tempDir, testCore } from "../helpers/env.ts";

const cli = async (args: string[]) => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {} });
  return { code, out: out.join(""), err: err.join("") };
};

describe("setup CLI", () => {
  test("through the running service's local API: the service publishes the events", async () => {
    const ctx = testCore({ port: 0 });
    const server = await startServer(ctx.core);
    try {
      const types: string[] = [];
      ctx.core.events.subscribe((e) => types.push(e.type));
      const dir = ctx.core.config.stateDir;
      const reset = await cli(["setup", "reset", "--json", "--state-dir", dir]);
      expect(reset.code).toBe(0);
      expect((JSON.parse(reset.out) as SetupStatus).state).toBe("not-started");
      expect(types).toContain("setup.reset");
      // options travel too; a bad one is refused by the service and changes nothing
      const bad = await cli(["setup", "--vm", "bad name", "--state-dir", dir]);
      expect(bad.code).toBe(1);
      expect(bad.err).toContain("vmName");
      expect(ctx.core.setup.status().options).toEqual({ passwordSet: false });
      const r = await cli(["setup", "--json", "--until", "detect", "--vm", "w1", "--state-dir", dir]);
      const st = JSON.parse(r.out) as SetupStatus;
      expect(st.steps[0]!.state).not.toBe("pending");
      expect(types).toContain("setup.step");
      expect(ctx.core.setup.status().options.vmName).toBe("w1");
    } finally {
      await server.stop();
      ctx.cleanup();
    }
  });

  test("usage errors: unknown subcommand, unknown step, option flags with a subcommand, verify without --boot", async () => {
    const d = tempDir();
    try {
      expect((await cli(["setup", "frobnicate", "--state-dir", d.path])).code).toBe(2);
      expect((await cli(["setup", "retry", "nope", "--state-dir", d.path])).err).toContain("expected a step");
      expect((await cli(["setup", "status", "--gpu", "0000:01:00.0", "--state-dir", d.path])).code).toBe(2);
      expect((await cli(["setup", "verify", "--state-dir", d.path])).err).toContain("--boot");
      const st = await cli(["setup", "status", "--state-dir", join(d.path, "s")]);
      expect(st.code).toBe(0);
      expect(st.out).toContain("setup: not-started");
      expect(st.out).toContain("detect");
    } finally {
      d.cleanup();
    }
  });
});
