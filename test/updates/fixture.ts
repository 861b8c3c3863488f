/**
 * Real components for the update tests: btrfs (and vfat for /boot) on loop
 * devices, pacman packages built by makepkg into local file:// repositories.
 * Every loop device and mount made here is undone by the exact device and
 * mount point it made.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, REPO_ROOT } from "../helpers/env.ts";

export function sh(argv: string[], opts: { timeoutMs?: number; env?: Record<string, string>; allowFail?: boolean } = {}): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: opts.timeoutMs ?? 120_000, env: { ...process.env, ...opts.env } as Record<string, string> });
  const out = { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  if (out.code !== 0 && !opts.allowFail) throw new Error(`${argv.join(" ")} → exit ${out.code}: ${out.stderr.trim() || out.stdout.trim()}`);
  return out;
}

const which = (b: string) => sh(["sh", "-c", `command -v ${b}`], { allowFail: true }).code === 0;

/** Why this machine cannot run the btrfs tests, or null when it can. */
export function btrfsMissing(): string | null {
  if (process.getuid?.() !== 0) return "needs root (loop devices, mounts, btrfs subvolumes)";
  if (!existsSync("/dev/loop-control")) return "no /dev/loop-control (no loop devices)";
  for (const b of ["mkfs.btrfs", "btrfs", "losetup"]) if (!which(b)) return `${b} is not installed (npm run setup installs btrfs-progs)`;
  return null;
}

export function pacmanMissing(): string | null {
  for (const b of ["pacman", "makepkg", "repo-add", "setpriv", "bsdtar", "fakeroot"]) if (!which(b)) return `${b} is not installed (npm run setup installs pacman-package-manager, makepkg, libarchive-tools, fakeroot)`;
  return null;
}

export function bootFsType(): "vfat" | "ext4" {
  return /\tvfat$/m.test(readFileSync("/proc/filesystems", "utf8")) && which("mkfs.vfat") ? "vfat" : "ext4";
}

export interface Mounted {
  dev: string;
  mnt: string;
  image: string;
  cleanup(): void;
}

export function loopMount(kind: "btrfs" | "vfat" | "ext4", sizeMb: number, mnt: string, dir: string): Mounted {
  const image = join(dir, `${kind}-${Math.random().toString(36).slice(2)}.img`);
  sh(["truncate", "-s", `${sizeMb}M`, image]);
  const dev = sh(["losetup", "-f", "--show", image]).stdout.trim();
  let mounted = false;
  const cleanup = () => {
    if (mounted) sh(["umount", mnt], { allowFail: true, timeoutMs: 60_000 });
    sh(["losetup", "-d", dev], { allowFail: true, timeoutMs: 30_000 });
    rmSync(image, { force: true });
  };
  try {
    if (kind === "btrfs") sh(["mkfs.btrfs", "-q", "-f", dev]);
    else if (kind === "vfat") sh(["mkfs.vfat", "-n", "BOOT", dev]);
    else sh(["mkfs.ext4", "-q", "-F", dev]);
    mkdirSync(mnt, { recursive: true });
    sh(["mount", dev, mnt]);
    mounted = true;
  } catch (err) {
    cleanup();
    throw err;
  }
  return { dev, mnt, image, cleanup };
}

/** A system root: subvolume @ on a btrfs loop device, /boot a vfat loop device mounted inside it, /var/lib/libvirt a subvolume of its own. */
export interface TestRoot {
  dir: string;
  fs: Mounted;
  boot: Mounted | null;
  root: string;
  bootDir: string;
  cleanup(): void;
}

export function makeRoot(opts: { sizeMb?: number; vfatBoot?: boolean } = {}): TestRoot {
  const dir = mkdtempSync(join(tmpdir(), "neuron-upd-"));
  const fs = loopMount("btrfs", opts.sizeMb ?? 400, join(dir, "mnt"), dir);
  const root = join(fs.mnt, "@");
  let boot: Mounted | null = null;
  try {
    sh(["btrfs", "subvolume", "create", root]);
    for (const d of ["boot", "home/user", "var/lib/pacman", "var/lib", "etc", "usr/bin"]) mkdirSync(join(root, d), { recursive: true });
    sh(["btrfs", "subvolume", "create", join(root, "var/lib/libvirt")]);
    writeFileSync(join(root, "var/lib/libvirt/win11.qcow2"), "vm disk v1\n");
    writeFileSync(join(root, "home/user/notes.txt"), "my notes\n");
    // an ESP is vfat; where this kernel has no vfat, another file system of its own stands in (outside the subvolume all the same)
    if (opts.vfatBoot !== false) boot = loopMount(bootFsType(), 48, join(root, "boot"), dir);
  } catch (err) {
    fs.cleanup();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    fs,
    boot,
    root,
    bootDir: join(root, "boot"),
    cleanup() {
      boot?.cleanup();
      fs.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** sha256 of every file (and link target) under a tree, by relative path; nested mounts/subvolumes listed in `skip`. */
export function treeHashes(root: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const stack = [""];
  while (stack.length) {
    const rel = stack.pop()!;
    for (const name of readdirSync(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip.includes(r)) continue;
      const full = join(root, r);
      const st = lstatSync(full);
      if (st.isDirectory()) stack.push(r);
      else if (st.isSymbolicLink()) out.set(r, `link:${readlinkSync(full)}`);
      else out.set(r, createHash("sha256").update(readFileSync(full)).digest("hex") + `:${(st.mode & 0o7777).toString(8)}`);
    }
  }
  return out;
}

interface Pkg {
  name: string;
  version: number;
  /** path → [content, mode] */
  files: Record<string, [string, number]>;
}

function pkgbuild(p: Pkg): string {
  const lines = Object.entries(p.files).map(([path, [content, mode]]) => {
    const b64 = Buffer.from(content).toString("base64");
    return `  install -d "$pkgdir$(dirname ${path})"\n  echo ${b64} | base64 -d > "$pkgdir${path}"\n  chmod ${mode.toString(8)} "$pkgdir${path}"`;
  });
  return [`pkgname=${p.name}`, `pkgver=${p.version}`, "pkgrel=1", "arch=(any)", `pkgdesc="neuron update test package"`, "license=(MIT)", "options=(!strip !debug)", "package() {", ...lines, "}", ""].join("\n");
}

const KERNEL = (v: number) => `NEURON-TEST-KERNEL 6.${v}.0-test ${"k".repeat(4000 * v)}\n`;

/** v1 and v2 of four packages; v2 of neuron-test-svc breaks the service it checks. */
export function testPackages(): Pkg[] {
  const out: Pkg[] = [];
  for (const v of [1, 2]) {
    const kver = `6.${v}.0-test`;
    out.push({ name: "neuron-test-base", version: v, files: { "/usr/share/neuron-test/data.txt": [`base data v${v}\n`, 0o644], "/etc/neuron-test.conf": [`version=${v}\n`, 0o644] } });
    out.push({
      name: "neuron-test-svc",
      version: v,
      files: { "/usr/bin/neuron-test-svc": [v === 1 ? "#!/bin/sh\necho 'libvirtd is active'\n" : "#!/bin/sh\necho 'libvirtd failed to start: missing symbol virDomainFoo' >&2\nexit 1\n", 0o755] },
    });
    out.push({
      name: "neuron-test-linux",
      version: v,
      files: {
        [`/usr/lib/modules/${kver}/vmlinuz`]: [KERNEL(v), 0o644],
        [`/usr/lib/modules/${kver}/pkgbase`]: ["linux\n", 0o644],
        [`/usr/lib/modules/${kver}/kernel/drivers/gpu/amdgpu.ko`]: [`amdgpu for ${kver}\n`, 0o644],
        "/boot/vmlinuz-linux": [KERNEL(v), 0o644],
        "/boot/initramfs-linux.img": [`initramfs for ${kver}\n`, 0o644],
      },
    });
    out.push({ name: "neuron-test-vendor-reset", version: v, files: { [`/usr/lib/modules/${kver}/updates/vendor-reset.ko`]: [`vendor-reset for ${kver}\n`, 0o644] } });
  }
  return out;
}

export interface Repos {
  v1: string;
  v2: string;
  names: string[];
}

/** Builds the packages with makepkg (as nobody: makepkg refuses root) once per content, into repos v1 and v2. */
export function buildRepos(): Repos {
  const pkgs = testPackages();
  const key = createHash("sha256").update(JSON.stringify(pkgs)).digest("hex").slice(0, 12);
  const base = join(tmpdir(), `neuron-test-pacman-repos-${key}`);
  const repos = { v1: join(base, "v1"), v2: join(base, "v2"), names: [...new Set(pkgs.map((p) => p.name))] };
  if (existsSync(join(base, "done"))) return repos;
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  chmodSync(base, 0o777);
  for (const p of pkgs) {
    const dir = join(base, "build", `${p.name}-${p.version}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "PKGBUILD"), pkgbuild(p));
    sh(["chmod", "-R", "a+rwX", join(base, "build")]);
    sh(["sh", "-c", `cd '${dir}' && setpriv --reuid=65534 --regid=65534 --clear-groups env HOME='${dir}' PKGEXT=.pkg.tar.gz makepkg -f --nodeps --noconfirm`], { timeoutMs: 120_000 });
    const repo = p.version === 1 ? repos.v1 : repos.v2;
    mkdirSync(repo, { recursive: true });
    const file = readdirSync(dir).find((f) => f.endsWith(".pkg.tar.gz"))!;
    sh(["cp", join(dir, file), repo]);
  }
  for (const r of [repos.v1, repos.v2]) sh(["sh", "-c", `repo-add -q '${r}/neurontest.db.tar.gz' '${r}'/*.pkg.tar.gz`]);
  // pacman refreshes a sync database only when the server's copy is newer
  sh(["sh", "-c", `touch -h -d '-1 hour' '${repos.v1}'/neurontest.*`]);
  writeFileSync(join(base, "done"), "");
  return repos;
}

export function pacmanConf(root: string, repo: string): void {
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "etc", "pacman.conf"), `[options]\nArchitecture = auto\nSigLevel = Never\nCheckSpace\n\n[neurontest]\nServer = file://${repo}\n`);
}

export function pacmanArgs(root: string): string[] {
  return ["--root", root, "--dbpath", join(root, "var/lib/pacman"), "--config", join(root, "etc/pacman.conf"), "--cachedir", join(root, "var/cache/pacman/pkg"), "--noconfirm"];
}

/** Installs v1 of every test package into the root with pacman itself. */
export function installV1(root: string, repos: Repos): void {
  pacmanConf(root, repos.v1);
  sh(["pacman", "-Sy", ...pacmanArgs(root)]);
  sh(["pacman", "-S", ...pacmanArgs(root), ...repos.names]);
}

export function writeTestConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, "config.json");
  writeFileSync(
    file,
    JSON.stringify({
      updates: {
        minFreeMb: 16,
        builtinChecks: ["binaries", "modules"],
        criticalBinaries: ["/usr/bin/neuron-test-svc"],
        rebootCommand: ["sh", "-c", `echo reboot >> '${join(dir, "reboots")}'`],
        ...extra,
      },
    }),
  );
  return file;
}

/** The CLI from source in a child process: real argv, real exit code, bounded. */
export function cli(args: string[], opts: { timeoutMs?: number } = {}) {
  const r = Bun.spawnSync([BUN, join(REPO_ROOT, "src", "main.ts"), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 180_000,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

