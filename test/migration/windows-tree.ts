/**
 * A Windows-like profile tree, written by the test into a real NTFS image (mkntfs, filled
 * through ntfs-3g) or into a plain folder: unicode and >260-character paths, a junction loop,
 * hidden/system attributes, an alternate data stream, a 4 GB sparse file, Chrome and Firefox
 * profiles with real SQLite files, VS Code, .gitconfig, .ssh, .npmrc, fonts, system profiles,
 * a hibernation marker; the image's dirty flag is set after unmounting.
 */
import { Database } from "bun:sqlite";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setVolumeDirty } from "../../src/migration/ntfs-volume.ts";

export const CHROME_EXT = "cjpalhdlnbpafiamejdnhcphjbkeiagm";
export const LONG_DIR = Array.from({ length: 6 }, (_, i) => `Sehr langer Ordnername Nummer ${i} für Pfade über zweihundertsechzig Zeichen`).join("/");

function sqliteFile(path: string, sqlText: string): void {
  const tmp = mkdtempSync(join(tmpdir(), "nsql-"));
  const db = new Database(join(tmp, "x.db"));
  db.exec("PRAGMA journal_mode=DELETE");
  db.exec(sqlText);
  db.close();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, readFileSync(join(tmp, "x.db")));
  rmSync(tmp, { recursive: true, force: true });
}

function put(root: string, rel: string, data: string | Buffer): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
}

/** Writes the tree under root (a mounted NTFS volume or a folder). `ntfs`: also attributes, ADS, junctions. */
export async function writeWindowsTree(root: string, opts: { ntfs: boolean; bulkFiles?: number; bulkBytes?: number; sparse4g?: boolean }): Promise<void> {
  const u = "Users/alice";
  put(root, `${u}/Documents/report.docx`, Buffer.alloc(50_000, 0x41));
  put(root, `${u}/Documents/Ünïcödé 文档 📄.txt`, "unicode name\n");
  put(root, `${u}/Documents/${LONG_DIR}/deep file.txt`, "deep\n");
  put(root, `${u}/Documents/notes.`, "trailing dot\n");
  put(root, `${u}/Documents/CON.txt`, "reserved name\n");
  put(root, `${u}/Documents/desktop.ini`, "[.ShellClassInfo]\r\n");
  put(root, `${u}/Documents/hidden.txt`, "hidden but mine\n");
  put(root, `${u}/Pictures/holiday.jpg`, Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) & 0xff)));
  put(root, `${u}/Music/song.mp3`, Buffer.alloc(10_000, 3));
  put(root, `${u}/Desktop/todo.txt`, "todo\n");
  put(root, `${u}/Downloads/setup.exe`, Buffer.alloc(20_000, 9));
  const bulk = opts.bulkFiles ?? 0;
  for (let i = 0; i < bulk; i++) put(root, `${u}/Documents/bulk/${Math.floor(i / 100)}/file-${i}.bin`, Buffer.alloc(opts.bulkBytes ?? 4096, i & 0xff));
  if (opts.sparse4g) {
    put(root, `${u}/Documents/disk.vhdx`, "");
    truncateSync(join(root, `${u}/Documents/disk.vhdx`), 4 * 1024 ** 3);
  }
  // Chrome
  const cd = `${u}/AppData/Local/Google/Chrome/User Data`;
  put(root, `${cd}/Local State`, JSON.stringify({ profile: { info_cache: { Default: { name: "Person 1" } } }, os_crypt: { encrypted_key: "RFBBUEk=" } }));
  put(root, `${cd}/Default/Preferences`, JSON.stringify({ download: { default_directory: "C:\\Users\\alice\\Downloads" }, profile: { name: "Person 1" } }));
  put(root, `${cd}/Default/Bookmarks`, JSON.stringify({ roots: { bookmark_bar: { children: [{ name: "NeuronOS", url: "https://example.org/" }] } } }));
  sqliteFile(join(root, `${cd}/Default/History`), "CREATE TABLE urls(id INTEGER PRIMARY KEY, url TEXT, title TEXT); INSERT INTO urls(url,title) VALUES ('https://example.org/','Example');");
  sqliteFile(join(root, `${cd}/Default/Login Data`), "CREATE TABLE logins(origin_url TEXT, username_value TEXT, password_value BLOB); INSERT INTO logins VALUES ('https://example.org/','alice',x'763130deadbeef');");
  sqliteFile(join(root, `${cd}/Default/Network/Cookies`), "CREATE TABLE cookies(host_key TEXT, name TEXT, encrypted_value BLOB); INSERT INTO cookies VALUES ('.example.org','sid',x'763130cafe');");
  put(root, `${cd}/Default/Cache/Cache_Data/f_000001`, Buffer.alloc(5000, 1));
  put(root, `${cd}/Default/Extensions/${CHROME_EXT}/1.0_0/manifest.json`, "{}");
  // Firefox
  const ff = `${u}/AppData/Roaming/Mozilla/Firefox`;
  put(root, `${ff}/profiles.ini`, "[Install308046B0AF4A39CB]\r\nDefault=Profiles/abcd1234.default-release\r\nLocked=1\r\n\r\n[Profile0]\r\nName=default-release\r\nIsRelative=1\r\nPath=Profiles/abcd1234.default-release\r\nDefault=1\r\n\r\n[General]\r\nStartWithLastProfile=1\r\nVersion=2\r\n");
  sqliteFile(join(root, `${ff}/Profiles/abcd1234.default-release/places.sqlite`), "CREATE TABLE moz_places(id INTEGER PRIMARY KEY, url TEXT); INSERT INTO moz_places(url) VALUES ('https://example.org/');");
  put(root, `${ff}/Profiles/abcd1234.default-release/prefs.js`, 'user_pref("browser.startup.page", 3);\n');
  put(root, `${ff}/Profiles/abcd1234.default-release/cache2/entries/ABC`, Buffer.alloc(3000, 2));
  put(root, `${ff}/Profiles/abcd1234.default-release/parent.lock`, "");
  // VS Code
  put(root, `${u}/AppData/Roaming/Code/User/settings.json`, '{ "editor.fontSize": 14 }\n');
  put(root, `${u}/AppData/Roaming/Code/User/keybindings.json`, "[]\n");
  put(root, `${u}/AppData/Roaming/Code/User/snippets/js.json`, "{}\n");
  put(root, `${u}/AppData/Roaming/Code/User/workspaceStorage/x/state.vscdb`, "x");
  put(root, `${u}/.vscode/extensions/ms-python.python-2024.1.0/package.json`, "{}");
  put(root, `${u}/.vscode/extensions/esbenp.prettier-vscode-10.1.0/package.json`, "{}");
  // git, ssh, npm, fonts
  put(root, `${u}/.gitconfig`, "[user]\r\n\tname = Alice\r\n[core]\r\n\tautocrlf = true\r\n\tsshCommand = C:/Windows/System32/OpenSSH/ssh.exe\r\n\texcludesfile = C:/Users/alice/.gitignore_global\r\n[credential]\r\n\thelper = manager\r\n");
  put(root, `${u}/.ssh/id_ed25519`, "-----BEGIN OPENSSH PRIVATE KEY-----\r\nAAAA\r\n-----END OPENSSH PRIVATE KEY-----\r\n");
  put(root, `${u}/.ssh/id_ed25519.pub`, "ssh-ed25519 AAAA alice@win\n");
  put(root, `${u}/.ssh/config`, "Host example\r\n  User alice\r\n");
  put(root, `${u}/.ssh/known_hosts`, "example.org ssh-ed25519 AAAA\r\n");
  put(root, `${u}/.ssh/authorized_keys`, "ssh-ed25519 BBBB bob\n");
  put(root, `${u}/.npmrc`, "registry-timeout=1000\n");
  put(root, `${u}/AppData/Local/Microsoft/Windows/Fonts/MyFont.ttf`, Buffer.alloc(2048, 5));
  // other profiles
  put(root, "Users/Default/NTUSER.DAT", "x");
  put(root, "Users/Public/Documents/shared.txt", "shared");
  put(root, "Users/bob/Documents/bob.txt", "bob's");
  symlinkSync("Default", join(root, "Users/Default User"));
  put(root, "hiberfil.sys", Buffer.concat([Buffer.from("HIBR"), Buffer.alloc(4092)]));
  // the "Application Data" loop and the legacy junction in Documents
  const loop = join(root, `${u}/AppData/Local/Application Data`);
  const myMusic = join(root, `${u}/Documents/My Music`);
  const docLoop = join(root, `${u}/Documents/Eigene Dateien`);
  if (opts.ntfs) {
    for (const [p, target] of [
      [loop, "C:\\Users\\alice\\AppData\\Local"],
      [myMusic, "C:\\Users\\alice\\Music"],
      [docLoop, "C:\\Users\\alice\\Documents"],
    ] as const) {
      mkdirSync(p);
      await setXattr(p, "system.ntfs_reparse_data", junction(target));
    }
    await setXattr(join(root, `${u}/Documents/desktop.ini`), "system.ntfs_attrib_be", Buffer.from([0, 0, 0, 0x06]));
    await setXattr(join(root, `${u}/Documents/hidden.txt`), "system.ntfs_attrib_be", Buffer.from([0, 0, 0, 0x02]));
    // a second stream, binary, on a hidden file; a hidden, system folder
    await setXattr(join(root, `${u}/Documents/hidden.txt`), "user.thumb", Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff)));
    await setXattr(join(root, `${u}/Pictures`), "system.ntfs_attrib_be", Buffer.from([0, 0, 0, 0x06]));
    await setXattr(join(root, `${u}/Documents/report.docx`), "user.Zone.Identifier", Buffer.from("[ZoneTransfer]\r\nZoneId=3\r\n"));
  } else {
    symlinkSync("..", loop);
    symlinkSync("../Music", myMusic);
    symlinkSync(".", docLoop);
  }
}

/** A mount-point reparse buffer (IO_REPARSE_TAG_MOUNT_POINT) for a Windows path. */
export function junction(target: string): Buffer {
  const sub = Buffer.from(`\\??\\${target}\0`, "utf16le");
  const print = Buffer.from(`${target}\0`, "utf16le");
  const body = Buffer.alloc(8 + sub.length + print.length);
  body.writeUInt16LE(0, 0);
  body.writeUInt16LE(sub.length - 2, 2);
  body.writeUInt16LE(sub.length, 4);
  body.writeUInt16LE(print.length - 2, 6);
  sub.copy(body, 8);
  print.copy(body, 8 + sub.length);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0xa0000003, 0);
  head.writeUInt16LE(body.length, 4);
  return Buffer.concat([head, body]);
}

async function setXattr(path: string, name: string, value: Buffer): Promise<void> {
  const p = Bun.spawn(["setfattr", "-n", name, "-v", `0x${value.toString("hex")}`, path], { stderr: "pipe", stdout: "ignore" });
  const code = await p.exited;
  if (code !== 0) throw new Error(`setfattr ${name} ${path}: ${await new Response(p.stderr).text()}`);
}

export async function sh(argv: string[]): Promise<string> {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")}: exit ${code}: ${err || out}`);
  return out;
}

export const haveNtfs = () => Boolean(Bun.which("mkntfs") && Bun.which("ntfs-3g") && Bun.which("setfattr")) && process.getuid?.() === 0;

/** A sparse NTFS image holding the tree, unmounted, marked dirty (and hibernated by hiberfil.sys). */
export async function makeNtfsImage(dir: string, opts: { bulkFiles?: number; bulkBytes?: number; sparse4g?: boolean; dirty?: boolean } = {}): Promise<string> {
  const img = join(dir, "windows.img");
  writeFileSync(img, "");
  truncateSync(img, 512 * 1024 * 1024);
  await sh(["mkntfs", "-F", "-Q", "-q", "-L", "Windows", img]);
  const mnt = join(dir, "fill");
  mkdirSync(mnt, { recursive: true });
  // first, a stream larger than an extended attribute can hold (64 KiB), written as Windows
  // does (file:stream); the tree written next keeps it (only the file's data is rewritten)
  await sh(["ntfs-3g", "-o", "streams_interface=windows", img, mnt]);
  try {
    mkdirSync(join(mnt, "Users/alice/Pictures"), { recursive: true });
    writeFileSync(join(mnt, "Users/alice/Pictures/holiday.jpg"), "");
    writeFileSync(join(mnt, "Users/alice/Pictures/holiday.jpg:thumbs"), Buffer.alloc(100_000, 0x5a));
  } finally {
    await sh(["umount", mnt]);
  }
  await sh(["ntfs-3g", img, mnt]);
  try {
    await writeWindowsTree(mnt, { ntfs: true, ...opts });
  } finally {
    await sh(["umount", mnt]);
  }
  if (opts.dirty !== false) setVolumeDirty(img, true);
  return img;
}
