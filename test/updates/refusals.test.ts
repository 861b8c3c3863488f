/**
 * What an update refuses, changing nothing: a full small file system, another
 * pacman holding its lock, a stale lock (reported, kept), ext4, bad arguments.
 * And the snapper backend under a real run: snapper's list shows our pair.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { snapperFor, snapperMissing } from "../snapshots/snapper-env.ts";
import { btrfsMissing, cli, buildRepos, installV1, loopMount, makeRoot, pacmanArgs, pacmanConf, pacmanMissing, sh, writeTestConfig, type TestRoot } from "./fixture.ts";

const missing = btrfsMissing();
if (missing) console.warn(`skipping update refusal tests: ${missing}`);

const noChange = (t: TestRoot, state: string, config: string) => {
  expect(existsSync(join(t.root, ".snapshots"))).toBe(false);
  const h = JSON.parse(cli(["update", "history", "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout);
  expect(h.updates).toEqual([]);
};

describe.skipIf(missing !== null)("update run refuses and changes nothing", () => {
  let t: TestRoot;
  let state: string;
  let config: string;
  beforeAll(() => {
    t = makeRoot({ sizeMb: 160, vfatBoot: false });
    state = join(t.dir, "state");
    mkdirSync(state);
    config = writeTestConfig(t.dir, { minFreeMb: 16 });
  });
  afterAll(() => t?.cleanup());

  test("a stale db.lck is reported, not deleted", () => {
    const lock = join(t.root, "var/lib/pacman/db.lck");
    writeFileSync(lock, "");
    const r = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--command", "true", "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("pacman's lock");
    expect(r.stderr).toContain("no pacman is running");
    expect(existsSync(lock)).toBe(true);
    noChange(t, state, config);
    sh(["rm", lock]);
  });

  test("a full small file system is refused (free-space floor)", () => {
    // fill it: dd stops at ENOSPC
    sh(["dd", "if=/dev/zero", `of=${join(t.root, "fill")}`, "bs=1M", "count=400"], { allowFail: true, timeoutMs: 60_000 });
    sh(["sync"]);
    const r = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--command", "true", "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/only \d+ MiB free on .*; an update needs at least 16 MiB/);
    noChange(t, state, config);
    sh(["rm", join(t.root, "fill")]);
  });

  test("ext4 is refused with what to do", () => {
    const dir = join(t.dir, "ext4");
    const m = loopMount("ext4", 32, dir, t.dir);
    try {
      const r = cli(["update", "run", "--config", config, "--root", dir, "--state-dir", state, "--command", "true"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("is on ext4, which cannot take snapshots");
      expect(readdirSync(dir)).toEqual(["lost+found"]);
    } finally {
      m.cleanup();
    }
  });

  test("a root mounted by subvol= (fstab or boot entries) is refused: a rollback could not change what boots", () => {
    writeFileSync(join(t.root, "etc/fstab"), "# <fs> <dir> <type> <options>\nUUID=x / btrfs rw,noatime,subvol=/@ 0 0\n");
    const r = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--command", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("mounts / with rw,noatime,subvol=/@, so a rollback could not change what boots");
    writeFileSync(join(t.root, "etc/fstab"), "UUID=x / btrfs rw,noatime 0 0\n");
    noChange(t, state, config);
  });

  test("bad arguments: a clear error, exit 2", () => {
    for (const args of [["update"], ["update", "frob"], ["update", "show", "abc"], ["update", "history", "--command", "x"], ["snapshot", "diff", "1"], ["snapshot", "delete"]]) {
      const r = cli([...args, "--config", config, "--root", t.root, "--state-dir", state]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("error:");
    }
    const r = cli(["update", "rollback", "99", "--config", config, "--root", t.root, "--state-dir", state]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no update 99");
    expect(cli(["snapshot", "delete", "5", "--config", config, "--root", t.root, "--state-dir", state]).stderr).toContain("no snapshot 5");
    noChange(t, state, config);
  });
});

describe.skipIf(missing !== null)("a package command that fails", () => {
  let t: TestRoot;
  let state: string;
  let config: string;
  beforeAll(() => {
    t = makeRoot({ sizeMb: 160, vfatBoot: false });
    state = join(t.dir, "state");
    mkdirSync(state);
    config = writeTestConfig(t.dir, { builtinChecks: ["binaries"], criticalBinaries: [] });
  });
  afterAll(() => t?.cleanup());
  const run = (command: string) => cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--command", command, "--no-reboot", "--json"]);

  test("before it changed a package: failed, nothing rolled back", () => {
    const r = run("echo 'error: failed to synchronize all databases' >&2; exit 1");
    expect(r.code).toBe(1);
    const u = JSON.parse(r.stdout);
    expect(u.verdict).toBe("failed");
    expect(u.nextBoot).toBeNull();
    expect(u.reason).toContain("exited with 1 and changed no package");
    expect(u.pre.path).toContain("/.snapshots/");
  });

  test("after it changed packages (a partial upgrade): rolled back", () => {
    const r = run('d="$NEURON_ROOT/var/lib/pacman/local/foo-2-1"; mkdir -p "$d" && printf "%%NAME%%\\nfoo\\n\\n%%VERSION%%\\n2-1\\n" > "$d/desc"; exit 1');
    const u = JSON.parse(r.stdout);
    expect(u.packages).toEqual([{ name: "foo", from: null, to: "2-1" }]);
    expect(u.verdict).toBe("rolled-back");
    expect(u.reason).toContain("The update of 1 package on");
    expect(u.reason).toContain("failed part way: the package command exited with 1");
    expect(existsSync(join(u.nextBoot, "var/lib/pacman/local/foo-2-1"))).toBe(false);
  });
});

const noPacman = missing ?? pacmanMissing();
describe.skipIf(noPacman !== null)("update run refuses while another pacman runs", () => {
  let t: TestRoot;
  beforeAll(() => {
    t = makeRoot({ sizeMb: 200, vfatBoot: false });
  });
  afterAll(() => t?.cleanup());

  test("a real pacman waiting at its prompt holds the lock: refused, naming its pid", async () => {
    const repos = buildRepos();
    pacmanConf(t.root, repos.v1);
    sh(["pacman", "-Sy", ...pacmanArgs(t.root)]);
    const args = pacmanArgs(t.root).filter((a) => a !== "--noconfirm");
    const other = Bun.spawn(["pacman", "-S", ...args, "neuron-test-base"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    try {
      const lock = join(t.root, "var/lib/pacman/db.lck");
      const deadline = Date.now() + 20_000;
      while (!existsSync(lock) && Date.now() < deadline) await Bun.sleep(50);
      expect(existsSync(lock)).toBe(true);
      const state = join(t.dir, "state");
      mkdirSync(state);
      const config = writeTestConfig(t.dir);
      const r = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--command", "true"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`another pacman is running (pid ${other.pid})`);
      expect(existsSync(join(t.root, ".snapshots"))).toBe(false);
      // a pacman working on another tree holds nothing of this one
      const otherRoot = join(t.fs.mnt, "@other");
      sh(["btrfs", "subvolume", "create", otherRoot]);
      const free = writeTestConfig(t.dir, { builtinChecks: [] });
      const ok = cli(["update", "run", "--config", free, "--root", otherRoot, "--state-dir", state, "--command", "true", "--json"]);
      expect(ok.stderr).toBe("");
      expect(JSON.parse(ok.stdout).verdict).toBe("ok");
    } finally {
      other.kill("SIGTERM");
      await Promise.race([other.exited, Bun.sleep(10_000)]);
      if (other.exitCode === null && other.signalCode === null) other.kill("SIGKILL");
      await Promise.race([other.exited, Bun.sleep(10_000)]);
    }
  }, 120_000);
});

const noSnapper = noPacman ?? snapperMissing();
describe.skipIf(noSnapper !== null)("update run through snapper", () => {
  let t: TestRoot;
  beforeAll(() => {
    t = makeRoot({ sizeMb: 300 });
  });
  afterAll(() => t?.cleanup());

  test("the pre/post pair is snapper's, with userdata; a rollback is snapper's too", () => {
    const repos = buildRepos();
    installV1(t.root, repos);
    pacmanConf(t.root, repos.v2);
    const wrapper = snapperFor(t.dir, "neurontest", t.root);
    const state = join(t.dir, "state");
    mkdirSync(state);
    const config = writeTestConfig(t.dir, { snapperConfig: "neurontest" });
    const cfg = JSON.parse(readFileSync(config, "utf8"));
    writeFileSync(config, JSON.stringify({ ...cfg, bin: { snapper: wrapper } }));
    const r = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--check", '"$NEURON_ROOT/usr/bin/neuron-test-svc"', "--no-reboot", "--json"]);
    expect(r.stderr).not.toContain("error:");
    const run = JSON.parse(r.stdout);
    expect(run.verdict).toBe("rolled-back");
    expect(run.pre.backend).toBe("snapper");
    const list = sh([wrapper, "--no-dbus", "-c", "neurontest", "list"]).stdout;
    expect(list).toMatch(new RegExp(`${run.pre.ref}\\s*\\|\\s*pre\\s*\\|.*neuron=pre, update=${run.id}`));
    expect(list).toMatch(new RegExp(`${run.post.ref}\\s*\\|\\s*post\\s*\\|\\s*${run.pre.ref}\\s*\\|`));
    expect(list).toContain(`rollback to snapshot ${run.pre.id}`);
    expect(readFileSync(join(run.nextBoot, "usr/bin/neuron-test-svc"), "utf8")).toContain("libvirtd is active");
  }, 240_000);
});
