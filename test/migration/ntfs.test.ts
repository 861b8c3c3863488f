/**
 * End to end on a real NTFS image (mkntfs, filled through ntfs-3g): the appliance mounts it
 * read-only, plans, refuses the hibernated + dirty volume until told, runs (killed with -9
 * mid-run, then resumed), verifies byte for byte, runs again without changing anything, undoes.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { run } from "../../src/cli/index.ts";
import { BUN, REPO_ROOT, tempDir } from "../helpers/env.ts";
import { CHROME_EXT, haveNtfs, LONG_DIR, makeNtfsImage, sh } from "./windows-tree.ts";

const SKIP = !haveNtfs() ? "needs root, mkntfs, ntfs-3g and setfattr (apt ntfs-3g attr)" : null;

let dir: { path: string; cleanup(): void };
let img = "";
let home = "";
let state = "";
let etc = "";
let view = "";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(args, { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: { NEURON_ETC_DIR: etc, NEURON_CONFIG: join(dir.path, "none.json") } });
  return { code, out, err };
}

function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      out.push(relative(root, p) + (st.isDirectory() ? "/" : ""));
      if (st.isDirectory() && !st.isSymbolicLink()) walk(p);
    }
  };
  walk(root);
  return out;
}

describe.skipIf(Boolean(SKIP))(`migration from an NTFS image${SKIP ? ` (skipped: ${SKIP})` : ""}`, () => {
  let before: string[] = [];
  let planId = 0;
  beforeAll(async () => {
    dir = tempDir("neuron-migrate-");
    img = await makeNtfsImage(dir.path, { bulkFiles: 400, bulkBytes: 100_000, sparse4g: true });
    state = join(dir.path, "state");
    etc = join(dir.path, "etc");
    home = join(dir.path, "home", "alice");
    view = join(dir.path, "view");
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(etc, "passwd"), `root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::${home}:/bin/sh\n`);
    writeFileSync(join(etc, "group"), "root:x:0:\n");
    mkdirSync(join(home, ".config"), { recursive: true });
    writeFileSync(join(home, ".config/user-dirs.dirs"), 'XDG_DOCUMENTS_DIR="$HOME/Dokumente"\nXDG_DOWNLOAD_DIR="$HOME/Downloads"\n');
    mkdirSync(join(home, "Dokumente"));
    writeFileSync(join(home, "Dokumente/REPORT.DOCX"), "mine, different\n");
    writeFileSync(join(home, ".npmrc"), "prefix=/home/alice/.npm-global\n");
    mkdirSync(view);
    writeFileSync(join(dir.path, "none.json"), "{}");
    before = listTree(home);
  }, 120_000);
  afterAll(async () => {
    if (existsSync(view)) await sh(["umount", view]).catch(() => {});
    dir?.cleanup();
  });

  test("plan: profiles, items with size/category/target/conflict/fidelity, source state", async () => {
    const r = await cli(["migrate", "plan", img, "--user", "alice", "--target", home, "--state-dir", state, "--json"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const p = JSON.parse(r.out);
    planId = p.id;
    expect(p.source).toMatchObject({ kind: "ntfs", mountedBy: "ntfs-3g", hibernated: true, dirty: true, bitlocker: false, readOnly: true });
    const names = p.profiles.map((x: { name: string; skipped: string | null }) => [x.name, x.skipped !== null]);
    expect(names).toContainEqual(["alice", false]);
    expect(names).toContainEqual(["Default", true]);
    expect(names).toContainEqual(["Public", true]);
    const item = (rule: string) => p.items.find((i: { rule: string }) => i.rule === rule);
    expect(item("xdg.documents")).toMatchObject({ category: "documents", fidelity: "exact", target: join(home, "Dokumente") });
    expect(item("xdg.documents").files).toBeGreaterThan(400);
    expect(item("xdg.documents").bytes).toBeGreaterThan(4 * 1024 ** 3);
    expect(item("xdg.documents").conflicts.sample.map((c: { reason: string }) => c.reason)).toEqual(expect.arrayContaining(["case-collision", "windows-name"]));
    expect(item("npm.config").conflicts).toMatchObject({ count: 1, sample: [{ reason: "exists" }] });
    expect(item("chrome.passwords")).toMatchObject({ fidelity: "cannot", category: "secrets" });
    expect(item("chrome.passwords").livePath.hint).toContain("Windows");
    expect(item("chrome.cookies").fidelity).toBe("cannot");
    expect(item("chrome.bookmarks")).toMatchObject({ fidelity: "exact", target: join(home, ".config/google-chrome/Default") });
    expect(item("chrome.extensions").reinstall).toEqual({ kind: "chromium-extension", ids: [CHROME_EXT] });
    expect(item("vscode.extensions").reinstall.ids).toEqual(["esbenp.prettier-vscode", "ms-python.python"]);
    expect(item("git.config").fidelity).toBe("translated");
    expect(item("firefox.profile").target).toBe(join(home, ".mozilla/firefox/abcd1234.default-release"));
    expect(p.totals.byFidelity.cannot).toBe(2);
    expect(p.estimateSeconds).toBeGreaterThan(0);
    expect(p.warnings.join(" ")).toContain("Fast Startup");
    expect(listTree(home)).toEqual(before);
  }, 60_000);

  test("run refuses the hibernated, dirty volume without --accept-unsafe-source, and writes nothing", async () => {
    const r = await cli(["migrate", "run", String(planId), "--state-dir", state]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("Restart");
    expect(r.err).toContain("--accept-unsafe-source");
    expect(listTree(home)).toEqual(before);
  }, 60_000);

  test("kill -9 mid-run, then resume: everything verified, byte-exact, times kept, sparse kept sparse", async () => {
    const proc = Bun.spawn([BUN, join(REPO_ROOT, "src/main.ts"), "migrate", "run", String(planId), "--accept-unsafe-source", "--state-dir", state, "--json"], {
      env: { ...process.env, NEURON_ETC_DIR: etc, NEURON_CONFIG: join(dir.path, "none.json") },
      stdout: "pipe",
      stderr: "pipe",
    });
    const db = new Database(join(state, "neuron.db"), { readonly: true });
    const deadline = Date.now() + 60_000;
    let done = 0;
    let total = 0;
    while (Date.now() < deadline) {
      try {
        total = (db.query("select count(*) n from migration_entries where migration_id=?").get(planId) as { n: number }).n;
        done = (db.query("select count(*) n from migration_entries where migration_id=? and state!='pending' and kind!='dir'").get(planId) as { n: number }).n;
      } catch {
        // tables busy or not yet there
      }
      if (done >= 30) break;
      await Bun.sleep(5);
    }
    proc.kill(9);
    await proc.exited;
    db.close();
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(total);

    const r = await cli(["migrate", "run", String(planId), "--accept-unsafe-source", "--state-dir", state, "--json"]);
    expect(r.err).toBe("");
    const report = JSON.parse(r.out);
    expect(report.status).toBe("done");
    expect(report.failed).toEqual([]);
    expect(report.copied.files).toBe(report.verified);
    expect(report.cannotMove.map((c: { item: string }) => c.item)).toEqual(["alice/chrome.passwords/Default", "alice/chrome.cookies/Default"]);
    expect(report.notFollowed).toEqual([{ path: "Users/alice/Documents/Eigene Dateien", kind: "junction" }]);
    expect(report.words).toContain("verified");
    // no part files anywhere, the junction loop not followed
    const tree = listTree(home);
    expect(tree.filter((p) => p.includes(".neuron-part-"))).toEqual([]);
    expect(tree.some((p) => p.includes("Eigene Dateien") || p.includes("My Music"))).toBe(false);

    // byte-exact against the source, mounted read-only here
    await sh(["ntfs-3g", "-o", "ro", img, view]);
    const src = (rel: string) => join(view, "Users/alice", rel);
    const same = (a: string, b: string) => expect(Bun.hash(readFileSync(a))).toBe(Bun.hash(readFileSync(b)));
    same(src("Documents/report.docx"), join(home, "Dokumente/report (2).docx"));
    same(src("Documents/Ünïcödé 文档 📄.txt"), join(home, "Dokumente/Ünïcödé 文档 📄.txt"));
    same(src(`Documents/${LONG_DIR}/deep file.txt`), join(home, `Dokumente/${LONG_DIR}/deep file.txt`));
    same(src("Documents/hidden.txt"), join(home, "Dokumente/hidden.txt"));
    same(src("Pictures/holiday.jpg"), join(home, "Pictures/holiday.jpg"));
    for (const i of [0, 123, 399]) same(src(`Documents/bulk/${Math.floor(i / 100)}/file-${i}.bin`), join(home, `Dokumente/bulk/${Math.floor(i / 100)}/file-${i}.bin`));
    same(src("AppData/Local/Google/Chrome/User Data/Default/History"), join(home, ".config/google-chrome/Default/History"));
    same(src("AppData/Roaming/Mozilla/Firefox/Profiles/abcd1234.default-release/places.sqlite"), join(home, ".mozilla/firefox/abcd1234.default-release/places.sqlite"));
    const hist = new Database(join(home, ".config/google-chrome/Default/History"), { readonly: true });
    expect(hist.query("select url from urls").all()).toEqual([{ url: "https://example.org/" }]);
    hist.close();
    expect(statSync(join(home, "Pictures/holiday.jpg")).mtimeMs).toBe(statSync(src("Pictures/holiday.jpg")).mtimeMs);
    // Windows attributes and alternate data streams, as user.ntfs.* extended attributes
    const xattr = (path: string, name: string) => {
      const r = Bun.spawnSync(["getfattr", "--only-values", "-n", name, path], { stdout: "pipe", stderr: "pipe" });
      return r.exitCode === 0 ? Buffer.from(r.stdout) : null;
    };
    expect(xattr(join(home, "Dokumente/report (2).docx"), "user.ntfs.ads.Zone.Identifier")?.toString()).toBe("[ZoneTransfer]\r\nZoneId=3\r\n");
    expect(xattr(join(home, "Dokumente/hidden.txt"), "user.ntfs.attrib")?.toString("hex")).toBe("00000002");
    expect(xattr(join(home, "Dokumente/hidden.txt"), "user.ntfs.ads.thumb")?.equals(xattr(src("Documents/hidden.txt"), "user.thumb")!)).toBe(true);
    expect(xattr(join(home, "Pictures"), "user.ntfs.attrib")?.toString("hex")).toBe("00000006");
    expect(xattr(join(home, "Pictures/holiday.jpg"), "user.ntfs.attrib")).toBeNull();
    const wm = report.windowsMetadata as { files: number; lost: number; items: { path: string; attributes: string[]; attributesKept: boolean | null; streams: { name: string; kept: boolean }[] }[] };
    // the 100 KB stream cannot be an extended attribute: reported, with the reason
    expect(wm.lost).toBe(1);
    expect(xattr(join(home, "Pictures/holiday.jpg"), "user.ntfs.ads.thumbs")).toBeNull();
    const byPath = Object.fromEntries(wm.items.map((i) => [i.path, i]));
    expect(byPath["Users/alice/Documents/hidden.txt"]).toMatchObject({ attributes: ["hidden"], attributesKept: true, streams: [{ name: "thumb", kept: true }] });
    expect(byPath["Users/alice/Documents/report.docx"]).toMatchObject({ attributes: [], attributesKept: null, streams: [{ name: "Zone.Identifier", size: 26, kept: true }] });
    expect(byPath["Users/alice/Pictures"]).toMatchObject({ attributes: ["hidden", "system"], attributesKept: true });
    expect(byPath["Users/alice/Pictures/holiday.jpg"]).toMatchObject({ streams: [{ name: "thumbs", size: 100_000, kept: false, why: expect.stringContaining("64 KiB") }] });
    expect(report.words).toContain("1 could not be kept");
    expect(report.words).toContain("alternate data stream");
    const sparse = statSync(join(home, "Dokumente/disk.vhdx"));
    expect(sparse.size).toBe(4 * 1024 ** 3);
    expect(sparse.blocks * 512).toBeLessThan(1024 * 1024);
    await sh(["umount", view]);

    // Windows names, excludes, conflicts kept
    expect(existsSync(join(home, "Dokumente/_CON.txt"))).toBe(true);
    expect(existsSync(join(home, "Dokumente/notes"))).toBe(true);
    expect(existsSync(join(home, "Dokumente/desktop.ini"))).toBe(false);
    expect(readFileSync(join(home, "Dokumente/REPORT.DOCX"), "utf8")).toBe("mine, different\n");
    expect(readFileSync(join(home, ".npmrc"), "utf8")).toBe("prefix=/home/alice/.npm-global\n");
    expect(existsSync(join(home, ".config/google-chrome/Default/Login Data"))).toBe(false);
    expect(existsSync(join(home, ".config/google-chrome/Default/Network/Cookies"))).toBe(false);
    expect(existsSync(join(home, ".config/google-chrome/Default/Cache"))).toBe(false);
    expect(existsSync(join(home, ".mozilla/firefox/abcd1234.default-release/cache2"))).toBe(false);
    expect(existsSync(join(home, ".mozilla/firefox/abcd1234.default-release/parent.lock"))).toBe(false);
    // transforms
    const git = readFileSync(join(home, ".gitconfig"), "utf8");
    expect(git).not.toContain("\r");
    expect(git).toContain("autocrlf = input");
    expect(git).toMatch(/^\s*helper = cache/m);
    expect(git).toMatch(/^\s*# sshCommand = C:\/Windows/m);
    expect(git).toContain(`excludesfile = ${home}/.gitignore_global`);
    const mode = (p: string) => statSync(join(home, p)).mode & 0o777;
    expect(mode(".ssh")).toBe(0o700);
    expect(mode(".ssh/id_ed25519")).toBe(0o600);
    expect(mode(".ssh/authorized_keys")).toBe(0o600);
    expect(mode(".ssh/id_ed25519.pub")).toBe(0o644);
    expect(readFileSync(join(home, ".ssh/config"), "utf8")).toBe("Host example\n  User alice\n");
    expect(readFileSync(join(home, ".ssh/known_hosts"), "utf8")).not.toContain("\r");
    const ini = readFileSync(join(home, ".mozilla/firefox/profiles.ini"), "utf8");
    expect(ini).toContain("Path=abcd1234.default-release");
    expect(ini).not.toContain("Install308046B0AF4A39CB");
    const prefs = JSON.parse(readFileSync(join(home, ".config/google-chrome/Default/Preferences"), "utf8"));
    expect(prefs.download.default_directory).toBe(join(home, "Downloads"));
    expect(existsSync(join(home, ".config/Code/User/snippets/js.json"))).toBe(true);
    expect(existsSync(join(home, ".config/Code/User/workspaceStorage"))).toBe(false);
    expect(existsSync(join(home, ".local/share/fonts/MyFont.ttf"))).toBe(true);
    expect(statSync(join(home, "Dokumente/report (2).docx")).uid).toBe(statSync(home).uid);
  }, 120_000);

  test("a second run changes nothing", async () => {
    const snapshot = listTree(home).map((p) => [p, lstatSync(join(home, p)).mtimeMs]);
    const r = await cli(["migrate", "run", img, "--user", "alice", "--target", home, "--accept-unsafe-source", "--state-dir", state, "--json"]);
    const report = JSON.parse(r.out);
    expect(report.status).toBe("done");
    expect(report.copied.files).toBe(0);
    expect(report.skipped.reasons.identical).toBeGreaterThan(400);
    expect(listTree(home).map((p) => [p, lstatSync(join(home, p)).mtimeMs])).toEqual(snapshot);
  }, 120_000);

  test("undo removes what the run created, refuses and lists a file changed since", async () => {
    writeFileSync(join(home, "Desktop/todo.txt"), "changed on Linux\n");
    const r = await cli(["migrate", "undo", String(planId), "--state-dir", state, "--json"]);
    expect(r.code).toBe(1);
    const u = JSON.parse(r.out);
    expect(u.refused).toEqual([{ path: join(home, "Desktop/todo.txt"), reason: "changed" }]);
    expect(u.removed).toBeGreaterThan(400);
    expect(listTree(home).sort()).toEqual([...before, "Desktop/", "Desktop/todo.txt"].sort());
  }, 60_000);

  test("a volume already mounted read-only is read where it is (by its image or its mount point), and left mounted", async () => {
    await sh(["ntfs-3g", "-o", "ro", img, view]);
    try {
      const other = join(dir.path, "home-mounted");
      mkdirSync(other);
      for (const source of [img, view]) {
        const r = await cli(["migrate", "plan", source, "--user", "alice", "--target", other, "--state-dir", state, "--json"]);
        expect(r.err).toBe("");
        const p = JSON.parse(r.out);
        expect(p.source).toMatchObject({ kind: "ntfs", mountedBy: "ntfs-3g", root: view, hibernated: true, dirty: true, readOnly: true });
        expect(p.totals.files).toBeGreaterThan(400);
        expect(p.warnings.join(" ")).toContain("alternate data stream");
      }
      expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(` ${view} `);
    } finally {
      await sh(["umount", view]);
    }
  }, 60_000);

  test("the service keeps its own mount from a plan to the run after it, then unmounts it", async () => {
    const { openDatabase } = await import("../../src/db/client.ts");
    const { migrationsRepo } = await import("../../src/db/repos/migrations.ts");
    const { MigrationSettingsSchema } = await import("../../src/migration/settings.ts");
    const { MigrationService } = await import("../../src/migration/service.ts");
    const { resolveNativePath } = await import("../../ffi/native.ts");
    const st = join(dir.path, "state-held");
    const target = join(dir.path, "home-held");
    mkdirSync(st);
    mkdirSync(target);
    const database = openDatabase(join(st, "neuron.db"));
    const svc = new MigrationService({ repo: migrationsRepo(database.db), settings: MigrationSettingsSchema.parse({}), stateDir: st, etcDir: etc, nativePath: () => resolveNativePath({}) });
    const ours = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(join(st, "migration-mounts"))).length;
    try {
      const plan = await svc.plan({ source: img, user: "alice", target });
      expect(ours()).toBe(1);
      const report = await svc.run(plan.id, { acceptUnsafeSource: true });
      expect(report.status).toBe("done");
      expect(report.failed).toEqual([]);
      expect(ours()).toBe(1);
    } finally {
      svc.close();
      database.close();
    }
    expect(ours()).toBe(0);
  }, 120_000);
});
