/**
 * One contract for every snapshot backend (btrfs, snapper), on a real btrfs
 * file system on a loop device; and the probe that picks one or refuses.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SnapshotBackend } from "../../src/snapshots/backend.ts";
import { BtrfsBackend } from "../../src/snapshots/btrfs.ts";
import { probeBackend } from "../../src/snapshots/probe.ts";
import { SnapperBackend } from "../../src/snapshots/snapper.ts";
import { btrfsMissing, loopMount, makeRoot, sh, type Mounted, type TestRoot } from "../updates/fixture.ts";
import { snapperFor, snapperMissing } from "./snapper-env.ts";

const missing = btrfsMissing();
if (missing) console.warn(`skipping snapshot backend tests: ${missing}`);
const noSnapper = missing ?? snapperMissing();
if (!missing && noSnapper) console.warn(`skipping the snapper backend: ${noSnapper}`);

interface Env {
  backend: SnapshotBackend;
  t: TestRoot;
  /** The backend's own listing of a snapshot (snapper list), when it has one. */
  nativeList?: () => string;
}

function contract(name: string, skip: boolean, make: () => Promise<Env>) {
  describe.skipIf(skip)(`snapshot backend contract: ${name}`, () => {
    let env: Env;
    beforeAll(async () => {
      env = await make();
      writeFileSync(join(env.t.root, "etc/hostname"), "neuron\n");
    }, 120_000);
    afterAll(() => env?.t.cleanup());

    let pre: { ref: string; path: string };
    let post: { ref: string; path: string };

    test("create: a read-only tree equal to the root at that moment", async () => {
      pre = await env.backend.create({ kind: "pre", description: "before update 7", userdata: { neuron: "pre", update: "7" } });
      writeFileSync(join(env.t.root, "etc/hostname"), "changed\n");
      expect(pre.path).toBe(join(env.t.root, ".snapshots", pre.ref, "snapshot"));
      expect(readFileSync(join(pre.path, "etc/hostname"), "utf8")).toBe("neuron\n");
      expect(() => writeFileSync(join(pre.path, "etc/x"), "x")).toThrow();
      // no snapshot holds another: .snapshots is a subvolume of its own
      expect(readdirSync(join(pre.path, ".snapshots"))).toEqual([]);
      post = await env.backend.create({ kind: "post", description: "after update 7", preRef: pre.ref, userdata: { neuron: "post" } });
      expect(readFileSync(join(post.path, "etc/hostname"), "utf8")).toBe("changed\n");
    });

    test("list: oldest first, with paths", async () => {
      const list = await env.backend.list();
      expect(list.map((s) => s.ref)).toEqual([pre.ref, post.ref]);
      expect(list[0]!.path).toBe(pre.path);
    });

    test("storeDir is beside the tree, outside it", () => {
      const d = env.backend.storeDir(pre.ref);
      expect(d.startsWith(join(env.t.root, ".snapshots", pre.ref))).toBe(true);
      expect(d.startsWith(pre.path)).toBe(false);
    });

    test("the backend's own tools see the pair and its userdata", () => {
      if (!env.nativeList) return;
      const out = env.nativeList();
      expect(out).toMatch(new RegExp(`${pre.ref}\\s*\\|\\s*pre\\s*\\|`));
      expect(out).toMatch(new RegExp(`${post.ref}\\s*\\|\\s*post\\s*\\|\\s*${pre.ref}\\s*\\|`));
      expect(out).toContain("neuron=pre, update=7");
    });

    let next: { ref: string; path: string };
    test("makeNextBoot: a writable copy becomes the default subvolume; the snapshot stays", async () => {
      next = await env.backend.makeNextBoot(pre.ref, "rollback to pre");
      expect(readFileSync(join(next.path, "etc/hostname"), "utf8")).toBe("neuron\n");
      writeFileSync(join(next.path, "etc/writable"), "yes");
      expect(await env.backend.defaultTree()).toBe(next.path);
      expect(existsSync(join(pre.path, "etc/writable"))).toBe(false);
    });

    test("delete: the next boot's tree is refused; others go; unknown refs are not found", async () => {
      await expect(env.backend.delete(next.ref)).rejects.toMatchObject({ errorCode: "SNAPSHOT_IN_USE" });
      await env.backend.delete(post.ref);
      expect(existsSync(post.path)).toBe(false);
      expect((await env.backend.list()).map((s) => s.ref)).toEqual([pre.ref, next.ref]);
      await expect(env.backend.delete("../../etc")).rejects.toMatchObject({ errorCode: "SNAPSHOT_NOT_FOUND" });
    });
  });
}

contract("btrfs", missing !== null, async () => {
  const t = makeRoot({ sizeMb: 200, vfatBoot: false });
  return { t, backend: new BtrfsBackend(t.root, "btrfs") };
});

contract("snapper", noSnapper !== null, async () => {
  const t = makeRoot({ sizeMb: 200, vfatBoot: false });
  const wrapper = snapperFor(t.dir, "neurontest", t.root);
  // found among snapper's configs by its subvolume, with no name configured
  const backend = await probeBackend({ root: t.root, btrfs: "btrfs", snapper: wrapper, snapperConfig: null });
  expect(backend).toBeInstanceOf(SnapperBackend);
  expect((backend as SnapperBackend).config).toBe("neurontest");
  const named = await probeBackend({ root: t.root, btrfs: "btrfs", snapper: wrapper, snapperConfig: "neurontest" });
  expect(named).toBeInstanceOf(SnapperBackend);
  mkdirSync(join(t.root, "srv"));
  sh(["btrfs", "subvolume", "create", join(t.root, "srv", "data")]);
  const wrong = await probeBackend({ root: join(t.root, "srv", "data"), btrfs: "btrfs", snapper: wrapper, snapperConfig: "neurontest" }).catch((e) => e);
  expect(wrong.errorCode).toBe("SNAPPER_CONFIG_MISMATCH");
  return { t, backend, nativeList: () => sh([wrapper, "--no-dbus", "-c", "neurontest", "list"]).stdout };
});

describe.skipIf(missing !== null)("probe", () => {
  let ext4: Mounted;
  let t: TestRoot;
  let dir: string;
  beforeAll(() => {
    t = makeRoot({ sizeMb: 200, vfatBoot: false });
    dir = join(t.dir, "ext4");
    ext4 = loopMount("ext4", 32, dir, t.dir);
  });
  afterAll(() => {
    ext4?.cleanup();
    t?.cleanup();
  });

  test("ext4 is refused, saying what the user can do", async () => {
    const err = await probeBackend({ root: dir, btrfs: "btrfs", snapper: "snapper", snapperConfig: null }).catch((e) => e);
    expect(err.errorCode).toBe("SNAPSHOTS_UNSUPPORTED");
    expect(err.message).toContain("is on ext4");
    expect(err.message).toContain("btrfs-convert");
  });

  test("a plain directory on btrfs is refused: only a subvolume can be snapshotted", async () => {
    mkdirSync(join(t.root, "plain"), { recursive: true });
    const err = await probeBackend({ root: join(t.root, "plain"), btrfs: "btrfs", snapper: "snapper", snapperConfig: null }).catch((e) => e);
    expect(err.errorCode).toBe("SNAPSHOTS_UNSUPPORTED");
    expect(err.message).toContain("not a subvolume");
    rmSync(join(t.root, "plain"), { recursive: true });
  });

  test("btrfs without a snapper config for the root: the btrfs backend", async () => {
    const b = await probeBackend({ root: t.root, btrfs: "btrfs", snapper: "/nonexistent/snapper", snapperConfig: null });
    expect(b.name).toBe("btrfs");
  });

  test("a missing root is refused", async () => {
    const err = await probeBackend({ root: join(t.dir, "nope"), btrfs: "btrfs", snapper: "snapper", snapperConfig: null }).catch((e) => e);
    expect(err.errorCode).toBe("SNAPSHOT_ROOT_MISSING");
  });
});
