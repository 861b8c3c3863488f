/**
 * The whole update path with real components: btrfs on a loop device (root
 * subvolume @, /boot a vfat ESP on its own loop device), a real pacman
 * upgrading from a local file:// repository of packages makepkg built here,
 * v1 → v2 where v2 breaks the service a required check runs → rollback.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, REPO_ROOT } from "../helpers/env.ts";
import { btrfsMissing, cli, buildRepos, installV1, makeRoot, pacmanConf, pacmanMissing, sh, treeHashes, writeTestConfig, type Repos, type TestRoot } from "./fixture.ts";

const missing = btrfsMissing() ?? pacmanMissing();
if (missing) console.warn(`skipping update run tests: ${missing}`);

const SVC_CHECK = `echo "written during the update" > "$NEURON_ROOT/home/user/later.txt"; "$NEURON_ROOT/usr/bin/neuron-test-svc"`;

describe.skipIf(missing !== null)("update run: pacman v1 → v2 breaks a service → rollback", () => {
  let repos: Repos;
  let t: TestRoot;
  let state: string;
  let config: string;
  let before: Map<string, string>;
  let bootBefore: Map<string, string>;
  let out: ReturnType<typeof cli>;
  let run: Record<string, any>;

  beforeAll(() => {
    repos = buildRepos();
    t = makeRoot();
    state = join(t.dir, "state");
    mkdirSync(state);
    config = writeTestConfig(t.dir);
    installV1(t.root, repos);
    pacmanConf(t.root, repos.v2);
    before = treeHashes(t.root, [".snapshots", "boot", "var/lib/libvirt"]);
    bootBefore = treeHashes(t.bootDir);
    out = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--check", SVC_CHECK, "--no-reboot", "--json"]);
    run = JSON.parse(out.stdout || "{}");
  }, 300_000);
  afterAll(() => t?.cleanup());

  test("the run is rolled back, with pre/post snapshots and the next boot's tree", () => {
    expect(out.stderr).not.toContain("error:");
    expect(out.code).toBe(1);
    expect(run.verdict).toBe("rolled-back");
    expect(run.pre.path).toBe(join(t.root, ".snapshots", run.pre.ref, "snapshot"));
    expect(run.post.path).toBe(join(t.root, ".snapshots", run.post.ref, "snapshot"));
    expect(existsSync(run.pre.path)).toBe(true);
    expect(existsSync(run.post.path)).toBe(true);
    expect(run.nextBoot).toMatch(new RegExp(`^${t.root}/\\.snapshots/\\d+/snapshot$`));
    expect(run.packages.map((p: any) => `${p.name} ${p.from} ${p.to}`)).toEqual([
      "neuron-test-base 1-1 2-1",
      "neuron-test-linux 1-1 2-1",
      "neuron-test-svc 1-1 2-1",
      "neuron-test-vendor-reset 1-1 2-1",
    ]);
    const failed = run.checks.filter((c: any) => c.status === "failed").map((c: any) => c.name);
    expect(failed).toEqual(["check command"]);
    expect(run.reason).toContain("The update of 4 packages on");
    expect(run.reason).toContain("broke check command");
    expect(run.reason).toContain("libvirtd failed to start");
    expect(run.reason).toContain(`Rolled back to snapshot ${run.pre.id}`);
    expect(run.reason).toContain("your VMs and files since then were kept");
    expect(run.coverage).toEqual({
      root: t.root,
      boot: "kept with each snapshot (outside the root subvolume)",
      keptOut: [
        { path: "/home", how: "carried over" },
        { path: "/var/lib/libvirt", how: "separate subvolume" },
        { path: "/var/lib/neuron-appliance", how: "absent" },
      ],
    });
  });

  test("the file system's default subvolume is the next boot's tree", () => {
    const def = sh(["btrfs", "subvolume", "get-default", t.fs.mnt]).stdout;
    const id = sh(["btrfs", "inspect-internal", "rootid", run.nextBoot]).stdout.trim();
    expect(def).toContain(`ID ${id} `);
  });

  test("rollback restores every byte of the root, and the /boot files outside it", () => {
    const after = treeHashes(run.nextBoot, [".snapshots", "boot", "var/lib/libvirt", "home/user/later.txt"]);
    expect([...after.entries()].sort()).toEqual([...before.entries()].sort());
    // the running (post) tree had v2
    expect(readFileSync(join(run.post.path, "usr/share/neuron-test/data.txt"), "utf8")).toBe("base data v2\n");
    expect(readFileSync(join(run.nextBoot, "usr/share/neuron-test/data.txt"), "utf8")).toBe("base data v1\n");
    // /boot (vfat, outside the subvolume) has v1's kernel again, matching the root's modules
    expect([...treeHashes(t.bootDir).entries()].sort()).toEqual([...bootBefore.entries()].sort());
    expect(readFileSync(join(t.bootDir, "vmlinuz-linux"), "utf8")).toStartWith("NEURON-TEST-KERNEL 6.1.0-test");
    expect(readFileSync(join(t.bootDir, "vmlinuz-linux"))).toEqual(readFileSync(join(run.nextBoot, "usr/lib/modules/6.1.0-test/vmlinuz")));
    expect(existsSync(join(run.nextBoot, "usr/lib/modules/6.2.0-test"))).toBe(false);
    expect(run.pre.bootFiles.map((f: any) => f.path)).toEqual(["initramfs-linux.img", "vmlinuz-linux"]);
  });

  test("what stays out of rollback: /home carried over, VM disks a subvolume of their own", () => {
    expect(readFileSync(join(run.nextBoot, "home/user/later.txt"), "utf8")).toBe("written during the update\n");
    expect(readFileSync(join(run.nextBoot, "home/user/notes.txt"), "utf8")).toBe("my notes\n");
    // a nested subvolume is not in any snapshot: it stays where it is for every root
    expect(existsSync(join(run.pre.path, "var/lib/libvirt/win11.qcow2"))).toBe(false);
  });

  test("db.lck is in no snapshot", () => {
    for (const p of [run.pre.path, run.post.path, run.nextBoot]) expect(existsSync(join(p, "var/lib/pacman/db.lck"))).toBe(false);
    expect(existsSync(join(t.root, "var/lib/pacman/db.lck"))).toBe(false);
  });

  test("show, history and snapshot list/diff tell the same story", () => {
    const show = JSON.parse(cli(["update", "show", String(run.id), "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout);
    expect(show.verdict).toBe("rolled-back");
    expect(show.pre.path).toBe(run.pre.path);
    expect(show.post.path).toBe(run.post.path);
    expect(show.nextBoot).toBe(run.nextBoot);
    expect(show.log).toContain("upgrading neuron-test-svc");
    const hist = JSON.parse(cli(["update", "history", "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout);
    expect(hist.updates.map((u: any) => u.verdict)).toEqual(["rolled-back"]);
    const list = JSON.parse(cli(["snapshot", "list", "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout);
    expect(list.snapshots.map((s: any) => s.kind)).toEqual(["pre", "post", "rollback"]);
    const diff = JSON.parse(cli(["snapshot", "diff", String(run.pre.id), String(run.post.id), "--config", config, "--root", t.root, "--state-dir", state, "--json"]).stdout);
    const paths = diff.changes.map((c: any) => `${c.change} ${c.path}`);
    expect(paths).toContain("changed /usr/bin/neuron-test-svc");
    expect(paths).toContain("added /usr/lib/modules/6.2.0-test/vmlinuz");
    expect(paths).toContain("removed /usr/lib/modules/6.1.0-test/vmlinuz");
  });

  test("another run before the reboot is refused: the next boot mounts the rollback", () => {
    const r = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--no-reboot", "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`update ${run.id} was rolled back and the next boot mounts ${run.nextBoot}; reboot before updating again`);
  });

  test("snapshot create / delete by hand; update rollback without an id takes the newest update", () => {
    const args = ["--config", config, "--root", t.root, "--state-dir", state, "--json"];
    const made = JSON.parse(cli(["snapshot", "create", "before", "tinkering", ...args]).stdout);
    expect(made.kind).toBe("manual");
    expect(made.label).toBe("before tinkering");
    expect(made.bootFiles.map((f: any) => f.path)).toEqual(["initramfs-linux.img", "vmlinuz-linux"]);
    expect(existsSync(made.path)).toBe(true);
    expect(JSON.parse(cli(["snapshot", "delete", String(made.id), ...args]).stdout)).toEqual({ deleted: made.id });
    expect(existsSync(made.path)).toBe(false);
    const rb = JSON.parse(cli(["update", "rollback", "--no-reboot", ...args]).stdout);
    expect(rb.id).toBe(run.id);
    expect(rb.verdict).toBe("rolled-back");
    expect(rb.reason).toContain(`was rolled back by hand. Rolled back to snapshot ${run.pre.id}`);
    expect(rb.nextBoot).not.toBe(run.nextBoot);
    expect(readFileSync(join(rb.nextBoot, "usr/share/neuron-test/data.txt"), "utf8")).toBe("base data v1\n");
  });

  test("the text output of the run names the verdict and the reason", () => {
    const text = cli(["update", "show", String(run.id), "--config", config, "--root", t.root, "--state-dir", state]).stdout;
    expect(text).toContain(`update ${run.id}: rolled-back`);
    expect(text).toMatch(/next boot mounts: .*\/\.snapshots\/\d+\/snapshot/);
  });
});

describe.skipIf(missing !== null)("update run: a healthy update, then verification at the next boots (boot counting)", () => {
  let repos: Repos;
  let t: TestRoot;
  let state: string;
  let config: string;
  beforeAll(() => {
    repos = buildRepos();
    t = makeRoot();
    state = join(t.dir, "state");
    mkdirSync(state);
    installV1(t.root, repos);
    pacmanConf(t.root, repos.v2);
    mkdirSync(join(t.bootDir, "loader", "entries"), { recursive: true });
    writeFileSync(join(t.bootDir, "loader", "loader.conf"), "default arch.conf\n");
    writeFileSync(join(t.bootDir, "loader", "entries", "arch.conf"), "title Arch\nlinux /vmlinuz-linux\ninitrd /initramfs-linux.img\n");
    writeFileSync(join(t.bootDir, "loader", "entries", "arch-fallback.conf"), "title Arch (fallback)\n");
  }, 300_000);
  afterAll(() => t?.cleanup());

  test("ok (a failing wanted check is reported only), boot counting armed with +3; three failed boots roll back", () => {
    config = writeTestConfig(t.dir, { checks: [{ name: "spare fan", command: "echo 'fan 2 is slow'; exit 3", required: false }] });
    const out = cli(["update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--no-reboot", "--json"]);
    expect(out.stderr).not.toContain("error:");
    const run = JSON.parse(out.stdout);
    expect(run.verdict).toBe("ok");
    expect(run.checks.find((c: any) => c.name === "spare fan")).toEqual({ name: "spare fan", required: false, status: "failed", detail: "exit 3: fan 2 is slow" });
    expect(run.checks.find((c: any) => c.name === "kernel modules")).toMatchObject({ status: "passed", detail: "present: vendor-reset@6.2.0-test" });
    expect(run.bootState).toBe("pending");
    expect(run.nextBoot).toBeNull();
    expect(existsSync(join(t.bootDir, "loader/entries/arch+3.conf"))).toBe(true);
    expect(readFileSync(join(t.bootDir, "vmlinuz-linux"), "utf8")).toStartWith("NEURON-TEST-KERNEL 6.2.0-test");

    // from now on the service check is required (the broken v2 service fails it at every boot)
    config = writeTestConfig(t.dir, { checks: [{ name: "libvirtd", command: '"$NEURON_ROOT/usr/bin/neuron-test-svc"' }] });
    const entries = join(t.bootDir, "loader/entries");
    for (const [boot, from, to] of [[1, "arch+3.conf", "arch+2-1.conf"], [2, "arch+2-1.conf", "arch+1-2.conf"], [3, "arch+1-2.conf", "arch+0-3.conf"]] as const) {
      // what systemd-boot does before it boots a counted entry
      sh(["mv", join(entries, from), join(entries, to)]);
      const r = cli(["update", "check", "--boot", "--config", config, "--root", t.root, "--state-dir", state, "--json"]);
      const rep = JSON.parse(r.stdout);
      expect(rep.healthy).toBe(false);
      expect(rep.update.bootFailures).toBe(boot);
      if (boot < 3) {
        expect(rep.update.verdict).toBe("ok");
        expect(readFileSync(join(t.dir, "reboots"), "utf8").trim().split("\n")).toHaveLength(boot);
      } else {
        expect(rep.update.verdict).toBe("rolled-back");
        expect(rep.update.reason).toContain("broke libvirtd (failed on 3 boots)");
        expect(rep.update.reason).toContain(`Rolled back to snapshot ${run.pre.id}`);
        expect(readFileSync(join(t.bootDir, "vmlinuz-linux"), "utf8")).toStartWith("NEURON-TEST-KERNEL 6.1.0-test");
        expect(readFileSync(join(rep.update.nextBoot, "usr/bin/neuron-test-svc"), "utf8")).toContain("libvirtd is active");
        expect(readFileSync(join(t.dir, "reboots"), "utf8").trim().split("\n")).toHaveLength(3);
      }
    }
  }, 240_000);
});

describe.skipIf(missing !== null || !Bun.which("script"))("update run on a terminal", () => {
  let t: TestRoot;
  beforeAll(() => {
    t = makeRoot();
    const repos = buildRepos();
    installV1(t.root, repos);
    pacmanConf(t.root, repos.v2);
  }, 300_000);
  afterAll(() => t?.cleanup());

  test("shows a progress bar with package counts parsed from pacman's output", () => {
    const state = join(t.dir, "state");
    mkdirSync(state);
    const config = writeTestConfig(t.dir);
    const line = [BUN, join(REPO_ROOT, "src/main.ts"), "update", "run", "--config", config, "--root", t.root, "--state-dir", state, "--no-reboot"].map((a) => `'${a}'`).join(" ");
    // script(1) gives the command a pseudo-terminal
    const r = sh(["script", "-qec", line, "/dev/null"], { timeoutMs: 180_000, allowFail: true });
    expect(r.stdout).toContain("[######------------------] 1/4".replace(/-/g, "."));
    expect(r.stdout).toContain("[########################] 4/4 upgrading neuron-test-vendor-reset");
    expect(r.stdout).toMatch(/update \d+: ok/);
    expect(r.code).toBe(0);
  }, 240_000);
});
