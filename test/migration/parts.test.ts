/** Pieces of the migration: Windows names, transforms, the rule globs, volume probing, BitLocker refusal, profiles. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { safeName } from "../../src/migration/names.ts";
import { probeVolume, volumeKind } from "../../src/migration/ntfs-volume.ts";
import { linuxUserName, listProfiles, xdgDirs } from "../../src/migration/profiles.ts";
import { globRegex, matcher } from "../../src/migration/rules.ts";
import { MigrationSettingsSchema } from "../../src/migration/settings.ts";
import { openSource, validRecoveryKey } from "../../src/migration/source.ts";
import { rewriteGitconfig, rewriteProfilesIni, sshFile } from "../../src/migration/transforms.ts";
import { tempDir } from "../helpers/env.ts";

const ctx = { windowsHome: "C:/Users/alice", home: "/home/alice", downloads: "/home/alice/Downloads", rel: "" };

describe("Windows names", () => {
  test("reserved names, trailing dots and spaces, over-long names", () => {
    expect(safeName("report.docx")).toEqual({ name: "report.docx", reason: null });
    expect(safeName("CON.txt").name).toBe("_CON.txt");
    expect(safeName("lpt1").name).toBe("_lpt1");
    expect(safeName("notes. . ").name).toBe("notes");
    const long = "文".repeat(200) + ".txt";
    const s = safeName(long);
    expect(Buffer.byteLength(s.name)).toBeLessThanOrEqual(255);
    expect(s.name.endsWith(".txt")).toBe(true);
    expect(safeName("文".repeat(199) + "字.txt").name).not.toBe(s.name);
  });
});

describe("transforms", () => {
  test(".gitconfig: autocrlf, credential manager, ssh.exe, C:/ paths; CRLF gone", () => {
    const r = rewriteGitconfig("[core]\r\n\tautocrlf = true\r\n\tsshCommand = \"C:\\\\Windows\\\\System32\\\\OpenSSH\\\\ssh.exe\"\r\n\teditor = C:/Program Files/Notepad++/notepad++.exe\r\n[credential]\r\n\thelper = manager-core\r\n[include]\r\n\tpath = C:/Users/alice/.gitconfig.local\r\n", ctx);
    expect(r.text).not.toContain("\r");
    expect(r.text).toContain("autocrlf = input");
    expect(r.text).toContain("helper = cache --timeout=3600");
    expect(r.text).toMatch(/# sshCommand/);
    expect(r.text).toMatch(/# editor = C:\/Program Files/);
    expect(r.text).toContain("path = /home/alice/.gitconfig.local");
    expect(r.changed.length).toBe(5);
  });
  test(".ssh modes and line ends", () => {
    expect(sshFile("config", Buffer.from("Host a\r\n"))).toMatchObject({ mode: 0o600, data: Buffer.from("Host a\n") });
    expect(sshFile("id_rsa.pub", Buffer.from("ssh-rsa A"))).toMatchObject({ mode: 0o644 });
    expect(sshFile("id_rsa", Buffer.from("-----BEGIN RSA PRIVATE KEY-----\r\nx\r\n")).mode).toBe(0o600);
    expect(sshFile("known_hosts", Buffer.from("h k\r\n")).mode).toBe(0o644);
  });
  test("profiles.ini: relative paths, install sections dropped", () => {
    const r = rewriteProfilesIni("[Install1234]\r\nDefault=Profiles/x.default\r\n\r\n[Profile0]\r\nPath=Profiles/x.default\r\nIsRelative=1\r\n");
    expect(r.text).toBe("[Profile0]\nPath=x.default\nIsRelative=1\n");
  });
});

describe("rule globs", () => {
  test("**, * and ? over relative paths, without case", () => {
    expect(globRegex("**/desktop.ini").test("a/b/Desktop.ini")).toBe(true);
    expect(globRegex("**/desktop.ini").test("desktop.ini")).toBe(true);
    expect(globRegex("cache2/**").test("cache2/entries/x")).toBe(true);
    expect(globRegex("*.ttf").test("a/b.ttf")).toBe(false);
    expect(matcher(["cache2/**"])!("cache2")).toBe(false);
    expect(matcher(["My Music"])!("My Music/x.mp3")).toBe(true);
  });
});

describe("sources", () => {
  const settings = MigrationSettingsSchema.parse({});
  test("boot sectors: NTFS, BitLocker, neither", () => {
    const b = Buffer.alloc(512);
    b.write("-FVE-FS-", 3, "latin1");
    expect(volumeKind(b)).toBe("bitlocker");
    b.write("NTFS    ", 3, "latin1");
    expect(volumeKind(b)).toBe("ntfs");
    expect(volumeKind(Buffer.alloc(4))).toBe("unknown");
  });
  test("a BitLocker volume without a key is refused with what to do; a malformed key is refused; nothing is mounted", async () => {
    const dir = tempDir("neuron-bitlocker-");
    try {
      const img = join(dir.path, "bl.img");
      const b = Buffer.alloc(1 << 20);
      b.write("-FVE-FS-", 3, "latin1");
      writeFileSync(img, b);
      expect(probeVolume(img).kind).toBe("bitlocker");
      const mountDir = join(dir.path, "mnt");
      await expect(openSource(img, { settings, mountDir })).rejects.toMatchObject({ errorCode: "MIGRATION_BITLOCKER_LOCKED", message: expect.stringContaining("recovery key") });
      await expect(openSource(img, { settings, mountDir, recoveryKey: "111111-222222-333333-444444-555555-666666-777777-888888" })).rejects.toMatchObject({ errorCode: "MIGRATION_BITLOCKER_KEY" });
      expect(validRecoveryKey("000011-000022-000033-000044-000055-000066-000077-000088")).toBe(true);
      await expect(openSource(join(dir.path, "nope"), { settings, mountDir })).rejects.toMatchObject({ errorCode: "MIGRATION_SOURCE_INVALID" });
      writeFileSync(join(dir.path, "zero.img"), Buffer.alloc(4096));
      await expect(openSource(join(dir.path, "zero.img"), { settings, mountDir })).rejects.toMatchObject({ errorCode: "MIGRATION_SOURCE_INVALID" });
    } finally {
      dir.cleanup();
    }
  });
});

describe("profiles", () => {
  test("Users/*: system profiles skipped, junctions ignored, mapped to Linux users; localized XDG folders", () => {
    const dir = tempDir("neuron-profiles-");
    try {
      for (const n of ["Ärne Weiß", "Default", "Public", "defaultuser0", "bob"]) mkdirSync(join(dir.path, "users", n), { recursive: true });
      symlinkSync("Default", join(dir.path, "users", "Default User"));
      const etc = join(dir.path, "etc");
      mkdirSync(etc);
      writeFileSync(join(etc, "passwd"), "bob:x:1001:1001::/srv/bob:/bin/sh\n");
      const p = listProfiles(dir.path, { etcDir: etc });
      expect(p.map((x) => [x.name, x.linuxUser, x.target, x.skipped === null])).toEqual([
        ["Default", "default", "/home/default", false],
        ["Public", "public", "/home/public", false],
        ["bob", "bob", "/srv/bob", true],
        ["defaultuser0", "defaultuser0", "/home/defaultuser0", false],
        ["Ärne Weiß", "arneweiss", "/home/arneweiss", true],
      ]);
      expect(linuxUserName("Ärne Weiß")).toBe("arneweiss");
      const home = join(dir.path, "h");
      mkdirSync(join(home, ".config"), { recursive: true });
      writeFileSync(join(home, ".config/user-dirs.dirs"), 'XDG_DOCUMENTS_DIR="$HOME/Dokumente"\nXDG_MUSIC_DIR="$HOME"\nXDG_PICTURES_DIR="/data/Bilder"\n');
      const x = xdgDirs(home);
      expect(x.DOCUMENTS).toBe(join(home, "Dokumente"));
      expect(x.MUSIC).toBe(join(home, "Music"));
      expect(x.PICTURES).toBe("/data/Bilder");
    } finally {
      dir.cleanup();
    }
  });
});
