/**
 * kill -9 in the middle of an update (pacman has upgraded, the appliance has not
 * finished), then the next start finds the history row still running with no
 * process, verifies, and rolls back by policy.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, REPO_ROOT } from "../helpers/env.ts";
import { btrfsMissing, buildRepos, cli, installV1, makeRoot, pacmanArgs, pacmanConf, pacmanMissing, treeHashes, writeTestConfig, type TestRoot } from "./fixture.ts";

const missing = btrfsMissing() ?? pacmanMissing();
if (missing) console.warn(`skipping interrupted update test: ${missing}`);

describe.skipIf(missing !== null)("an update killed with SIGKILL", () => {
  let t: TestRoot;
  beforeAll(() => {
    t = makeRoot();
  });
  afterAll(() => t?.cleanup());

  test("is detected at the next start and rolled back to its pre snapshot", async () => {
    const repos = buildRepos();
    installV1(t.root, repos);
    pacmanConf(t.root, repos.v2);
    const before = treeHashes(t.root, [".snapshots", "boot", "var/lib/libvirt", "var/lib/neuron-appliance"]);
    const bootBefore = treeHashes(t.bootDir);
    // the appliance's state lives in the root, as on a real system: it must be carried into the rolled-back root
    const state = join(t.root, "var/lib/neuron-appliance");
    mkdirSync(state, { recursive: true });
    const config = writeTestConfig(t.dir);
    const marker = join(t.dir, "pacman-done");
    const command = `pacman -Syu ${pacmanArgs(t.root).join(" ")} && touch '${marker}' && sleep 120`;
    // setsid: the CLI leads its own process group, so one kill reaches pacman's shell too
    const proc = Bun.spawn(["setsid", BUN, join(REPO_ROOT, "src/main.ts"), "update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--command", command, "--json"], { stdout: "pipe", stderr: "pipe" });
    const deadline = Date.now() + 120_000;
    while (!existsSync(marker) && Date.now() < deadline && proc.exitCode === null) await Bun.sleep(100);
    expect(existsSync(marker)).toBe(true);
    process.kill(-proc.pid, "SIGKILL");
    await Promise.race([proc.exited, Bun.sleep(10_000)]);
    expect(proc.signalCode).toBe("SIGKILL");
    // the system is in the middle: v2 installed, no verdict
    expect(readFileSync(join(t.root, "usr/share/neuron-test/data.txt"), "utf8")).toBe("base data v2\n");

    const r = cli(["update", "check", "--config", config, "--root", t.root, "--state-dir", state, "--json"]);
    expect(r.stderr).not.toContain("error:");
    const rep = JSON.parse(r.stdout);
    expect(rep.recovered).toHaveLength(1);
    const u = rep.recovered[0];
    expect(u.verdict).toBe("rolled-back");
    expect(u.reason).toContain("The update of 4 packages on");
    expect(u.reason).toContain("was interrupted before it finished");
    expect(u.reason).toContain(`Rolled back to snapshot ${u.pre.id}`);
    expect(u.post).toBeNull();
    const after = treeHashes(u.nextBoot, [".snapshots", "boot", "var/lib/libvirt", "var/lib/neuron-appliance"]);
    expect([...after.entries()].sort()).toEqual([...before.entries()].sort());
    expect([...treeHashes(t.bootDir).entries()].sort()).toEqual([...bootBefore.entries()].sort());

    // a second start finds nothing more to recover
    const again = JSON.parse(cli(["update", "check", "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout);
    expect(again.recovered).toEqual([]);
    const hist = JSON.parse(cli(["update", "history", "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout);
    expect(hist.updates.map((x: any) => x.verdict)).toEqual(["rolled-back"]);
    // the next root has the appliance's state with the rollback recorded (so the next boot does not recover it again)
    const carried = join(u.nextBoot, "var/lib/neuron-appliance");
    const next = JSON.parse(cli(["update", "history", "--config", config, "--root", t.root, "--state-dir", carried, "--json"]).stdout);
    expect(next.updates.map((x: any) => [x.id, x.verdict])).toEqual([[u.id, "rolled-back"]]);
    expect(u.coverage.keptOut).toContainEqual({ path: "/var/lib/neuron-appliance", how: "carried over" });
  }, 240_000);
});

describe.skipIf(missing !== null)("pacman itself killed with SIGKILL while it holds its lock", () => {
  let t: TestRoot;
  beforeAll(() => {
    t = makeRoot({ vfatBoot: false });
  });
  afterAll(() => t?.cleanup());

  test("the service's next start rolls back; the lock pacman left is reported, not removed, and in no snapshot", async () => {
    const repos = buildRepos();
    installV1(t.root, repos);
    // a download command that stalls: pacman holds db.lck while it waits for it
    const marker = join(t.dir, "downloading");
    const xfer = join(t.dir, "slow-xfer");
    writeFileSync(xfer, `#!/bin/sh\ntouch '${marker}'\nsleep 120\ncp "\${1#file://}" "$2"\n`);
    chmodSync(xfer, 0o755);
    writeFileSync(join(t.root, "etc/pacman.conf"), `[options]\nArchitecture = auto\nSigLevel = Never\nXferCommand = ${xfer} %u %o\n\n[neurontest]\nServer = file://${repos.v2}\n`);
    const state = join(t.dir, "state");
    mkdirSync(state);
    const config = writeTestConfig(t.dir);
    const proc = Bun.spawn(["setsid", BUN, join(REPO_ROOT, "src/main.ts"), "update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--json"], { stdout: "pipe", stderr: "pipe" });
    const lock = join(t.root, "var/lib/pacman/db.lck");
    const deadline = Date.now() + 120_000;
    while (!(existsSync(marker) && existsSync(lock)) && Date.now() < deadline && proc.exitCode === null) await Bun.sleep(100);
    expect(existsSync(lock)).toBe(true);
    process.kill(-proc.pid, "SIGKILL");
    await Promise.race([proc.exited, Bun.sleep(10_000)]);
    expect(existsSync(lock)).toBe(true);

    // the next start is the service's: it recovers in the background once it listens
    const serveConfig = writeTestConfig(t.dir, { root: t.root });
    const cfg = JSON.parse(readFileSync(serveConfig, "utf8"));
    writeFileSync(serveConfig, JSON.stringify({ ...cfg, gamestreamEnabled: false, mdns: false }));
    const serve = Bun.spawn([BUN, join(REPO_ROOT, "src/main.ts"), "serve", "--config", serveConfig, "--port", "0", "--state-dir", state, "--log-format", "json"], { stdout: "pipe", stderr: "pipe" });
    let u: any = null;
    try {
      const until = Date.now() + 90_000;
      while (Date.now() < until && serve.exitCode === null) {
        const h = JSON.parse(cli(["update", "history", "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout || "{}");
        if (h.updates?.[0]?.verdict) {
          u = h.updates[0];
          break;
        }
        await Bun.sleep(300);
      }
    } finally {
      serve.kill("SIGTERM");
      await Promise.race([serve.exited, Bun.sleep(15_000)]);
      if (serve.exitCode === null && serve.signalCode === null) serve.kill("SIGKILL");
    }
    const log = await new Response(serve.stderr).text();
    expect(log).toContain("interrupted update recovered");
    expect(u).not.toBeNull();
    expect(u.verdict).toBe("rolled-back");
    expect(u.reason).toContain("was interrupted before it finished");
    expect(u.reason).toContain(`pacman's lock ${lock} was left behind (not removed)`);
    expect(existsSync(lock)).toBe(true);
    expect(existsSync(join(u.pre.path, "var/lib/pacman/db.lck"))).toBe(false);
    expect(existsSync(join(u.nextBoot, "var/lib/pacman/db.lck"))).toBe(false);
    // a new run is refused until the reboot into the rolled-back root
    const again = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--command", "true"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("reboot before updating again");
  }, 240_000);
});
