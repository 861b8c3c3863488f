import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, REPO_ROOT } from "../helpers/env.ts";

const isRoot = process.getuid?.() === 0;
const ip = Bun.which("ip");

describe("mDNS discovery", () => {
  test.skipIf(!isRoot || !ip)("advertises _nvstream._tcp with the host name and HTTP port (inside a private network namespace; skipped: needs root and iproute2 to make one)", () => {
    const ns = `neuron-mdns-${process.pid}`;
    const run = (...args: string[]) => Bun.spawnSync([ip!, ...args], { stderr: "pipe" });
    expect(run("netns", "add", ns).exitCode).toBe(0);
    try {
      run("-n", ns, "link", "set", "lo", "up");
      run("-n", ns, "link", "set", "lo", "multicast", "on");
      run("-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo");
      const r = Bun.spawnSync([ip!, "netns", "exec", ns, BUN, join(REPO_ROOT, "test", "gamestream", "netns", "mdns-probe.ts")], { stderr: "pipe", stdout: "pipe", timeout: 20_000 });
      const found = JSON.parse(r.stdout.toString() || "{}");
      expect(found.ptr).toBe("neuron-mdns-test._nvstream._tcp.local");
      expect(found.srv).toMatchObject({ port: 47989 });
    } finally {
      run("netns", "del", ns);
    }
  });
});
