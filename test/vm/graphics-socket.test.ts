/**
 * The VMs' displays on unix sockets: the socket directory (owner, group, mode,
 * the fallback without the admin group, refusals), VmService.create refusing
 * bad socket paths before it writes anything, and on a real private libvirtd:
 * a started VM's SPICE and VNC sockets exist in the directory with the
 * expected owner and mode, root gets SPICE's link reply ("REDQ") and VNC's
 * banner through them, a member of the admin group can connect, a user outside
 * it cannot, QEMU listens on no TCP port, and doctor names a VM defined with
 * SPICE on TCP.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import { checkVmGraphics } from "../../src/vm/graphics-doctor.ts";
import { ensureGraphicsDir, graphicsDirOwner, secureGraphicsSockets, vmGraphicsSocket } from "../../src/vm/graphics-socket.ts";
import { idOf } from "../../src/vm/host.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { VmService, vmSideFiles } from "../../src/vm/service.ts";
import { Virsh } from "../../src/vm/virsh.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd, type PrivateLibvirtd } from "./libvirtd.ts";

const ROOT = process.getuid?.() === 0;
const dir = tempDir("neuron-spice-");
chmodSync(dir.path, 0o755); // QEMU's user walks into the socket directory below it
afterAll(() => dir.cleanup());

const sh = (argv: string[]) => {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

describe.skipIf(!ROOT)("display socket directory", () => {
  const groups = join(dir.path, "group");
  writeFileSync(groups, "root:x:0:\nkvm:x:110:\nneuronadm:x:4242:alice\n");
  const qemuDir = join(dir.path, "libvirt-qemu");
  mkdirSync(qemuDir);
  chmodSync(qemuDir, 0o751);
  // QEMU's user is the owner of libvirt's QEMU directory
  Bun.spawnSync(["chown", "4343:110", qemuDir]);

  test("QEMU's user, the admin group, 2750; repaired when changed", () => {
    const owner = graphicsDirOwner(qemuDir, "neuronadm", groups);
    expect(owner).toEqual({ uid: 4343, gid: 4242, mode: 0o2750, socketMode: 0o660, group: "neuronadm" });
    const spiceDir = join(dir.path, "spice-a");
    ensureGraphicsDir(spiceDir, owner);
    const st = statSync(spiceDir);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([4343, 4242, 0o2750]);
    chmodSync(spiceDir, 0o777);
    Bun.spawnSync(["chown", "0:0", spiceDir]);
    ensureGraphicsDir(spiceDir, owner);
    const again = statSync(spiceDir);
    // chown drops the setgid bit: it is set again after it
    expect([again.uid, again.gid, again.mode & 0o7777]).toEqual([4343, 4242, 0o2750]);
  });

  test("no admin group on this host: root and QEMU only (0700, QEMU's group)", () => {
    const owner = graphicsDirOwner(qemuDir, "nosuchgroup", groups);
    expect(owner).toEqual({ uid: 4343, gid: 110, mode: 0o700, socketMode: 0o600, group: null });
    const spiceDir = join(dir.path, "spice-b");
    ensureGraphicsDir(spiceDir, owner);
    expect(statSync(spiceDir).mode & 0o7777).toBe(0o700);
  });

  test("a file where the directory should be is refused with the config key named", () => {
    const file = join(dir.path, "not-a-dir");
    writeFileSync(file, "x");
    expect(() => ensureGraphicsDir(file, graphicsDirOwner(qemuDir, "neuronadm", groups))).toThrow(`cannot prepare ${file} (config spiceDir) for QEMU's user 4343:4242: not a directory`);
    expect(readFileSync(file, "utf8")).toBe("x");
  });

  test("secureGraphicsSockets: group and 0660 on a socket; something else under the name is refused untouched", async () => {
    const spiceDir = join(dir.path, "spice-c");
    const owner = ensureGraphicsDir(spiceDir, graphicsDirOwner(qemuDir, "neuronadm", groups));
    const path = vmGraphicsSocket(spiceDir, "vm", "spice");
    const server = Bun.listen({ unix: path, socket: { data() {} } });
    try {
      // as QEMU leaves it: its user, its group, libvirt's umask 002
      chmodSync(path, 0o775);
      Bun.spawnSync(["chown", "4343:110", path]);
      expect(secureGraphicsSockets([path, join(spiceDir, "absent.spice")], owner)).toEqual([{ path, mode: 0o775, uid: 4343, gid: 110 }]);
      const st = statSync(path);
      expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([4343, 4242, 0o660]);
    } finally {
      server.stop(true);
    }
    const file = join(spiceDir, "file.spice");
    writeFileSync(file, "");
    chmodSync(file, 0o644);
    expect(() => secureGraphicsSockets([file], owner)).toThrow(`${file} is not a socket`);
    expect(statSync(file).mode & 0o7777).toBe(0o644);
    // QEMU's user swapping its socket for a symlink to root's file gets it nowhere
    const rootFile = join(dir.path, "roots-file");
    writeFileSync(rootFile, "");
    chmodSync(rootFile, 0o600);
    const link = join(spiceDir, "link.spice");
    symlinkSync(rootFile, link);
    expect(() => secureGraphicsSockets([link], owner)).toThrow(`${link} is not a socket`);
    expect([statSync(rootFile).gid, statSync(rootFile).mode & 0o7777]).toEqual([0, 0o600]);
  });
});

describe.skipIf(!ROOT || Bun.which("virsh") === null)("doctor vm-graphics on libvirt's test driver", () => {
  test("a directory with the wrong mode and owner is named; a missing admin group is a warning, not a failure", async () => {
    const groups = join(dir.path, "group-doctor");
    writeFileSync(groups, "neuronadm:x:4242:\n");
    const spiceDir = join(dir.path, "spice-doctor");
    mkdirSync(spiceDir);
    chmodSync(spiceDir, 0o755);
    const qemuDir = join(dir.path, "qemu-doctor");
    mkdirSync(qemuDir);
    const config = testConfig({ libvirtUri: "test:///default", spiceDir, libvirtQemuDir: qemuDir, adminGroup: "neuronadm" });
    expect(await checkVmGraphics(config, groups)).toMatchObject({
      status: "warn",
      detail: `${spiceDir} belongs to 0:0, expected 0:4242 (QEMU's user, neuronadm; vm start repairs it); ${spiceDir} has mode 0755, expected 02750 (vm start repairs it)`,
    });
    ensureGraphicsDir(spiceDir, graphicsDirOwner(qemuDir, "neuronadm", groups));
    expect(await checkVmGraphics(config, groups)).toMatchObject({ status: "ok", detail: `no display on TCP; 0 running display socket(s) in ${spiceDir}` });
    const missing = await checkVmGraphics(testConfig({ libvirtUri: "test:///default", spiceDir: join(dir.path, "absent"), libvirtQemuDir: qemuDir, adminGroup: "nosuch" }), groups);
    expect(missing.status).toBe("warn");
    expect(missing.detail).toContain("group nosuch (config adminGroup) does not exist: only root reaches the display sockets, looking-glass-client gets no SPICE input");
  });
});

describe.skipIf(Bun.which("virsh") === null)("VmService.create: a display socket path that cannot work is refused before anything is written", () => {
  test("a VM name that makes the socket path longer than 107 bytes", async () => {
    const state = join(dir.path, "state-long");
    const db = openDatabase(join(dir.path, "long.db"));
    try {
      const spiceDir = "/" + "s".repeat(80);
      const vms = new VmService({
        virsh: new Virsh({ bin: "virsh", uri: "test:///default" }),
        audit: vmAuditRepo(db.db),
        resolver: noPassthrough,
        settings: { stateDir: state, shmDir: join(dir.path, "shm"), qemuImg: "qemu-img", root: "/", targetRoot: join(dir.path, "target-long"), spiceDir },
        shmOwner: () => null,
        cpuVendor: () => "other",
      });
      const name = "a-rather-long-vm-name-here-x";
      const err = await vms.create({ name, template: "linux", disk: { kind: "new", sizeGiB: 1 } }).catch((e: Error) => e);
      expect((err as Error).message).toBe(`SPICE socket path ${spiceDir}/${name}.spice is longer than 107 bytes (unix socket limit): use a shorter spiceDir or VM name`);
      expect(existsSync(state)).toBe(false);
      expect(existsSync(join(dir.path, "target-long"))).toBe(false);
      expect(existsSync(vmSideFiles({ stateDir: state, targetRoot: join(dir.path, "target-long") }, name).clientIni)).toBe(false);
      // the same VM headless needs no display socket
      expect(vms.plan({ name, template: "linux", graphics: "none" }).graphicsSocket).toBeNull();
    } finally {
      db.close();
    }
  });
});

// ---- a real libvirtd --------------------------------------------------------

const kvmGid = idOf("/etc/group", "kvm");
const qemuUid = idOf("/etc/passwd", "libvirt-qemu");
/** libvirt re-probes QEMU on every call when QEMU's user cannot open /dev/kvm but root can: QEMU then runs as root. */
function kvmUsableByGroup(): boolean {
  if (!existsSync("/dev/kvm")) return true;
  const st = statSync("/dev/kvm");
  return st.gid === kvmGid && (st.mode & 0o060) === 0o060;
}
const QEMU_AS = qemuUid !== null && kvmGid !== null && kvmUsableByGroup() ? { user: "libvirt-qemu", group: "kvm" } : { user: "root", group: "root" };
const TOOLS = ["setpriv", "useradd", "userdel", "groupadd", "groupdel"].find((b) => !Bun.which(b));
let SKIP: string | null = libvirtdUnavailable() ?? (TOOLS ? `${TOOLS} is not installed` : null) ?? (kvmGid === null ? "no kvm group" : null);
let daemon: PrivateLibvirtd | null = null;
if (SKIP === null) {
  if (QEMU_AS.user === "root") console.warn("graphics socket test: QEMU runs as root (/dev/kvm is not open to group kvm here, libvirtd would re-probe QEMU on every call)");
  daemon = await startLibvirtd({ qemuUser: QEMU_AS });
  // libvirtd must answer a definition promptly, or every step below would crawl
  const probe = join(dir.path, "probe.xml");
  writeFileSync(probe, `<domain type="qemu"><name>probe</name><memory unit="MiB">64</memory><os><type arch="x86_64" machine="q35">hvm</type></os></domain>`);
  const p = Bun.spawn(["virsh", "-q", "-c", daemon.uri, `define ${probe}; undefine probe`], { stdout: "ignore", stderr: "pipe" });
  const answered = await Promise.race([p.exited.then(() => true), Bun.sleep(30_000).then(() => false)]);
  if (!answered || p.exitCode !== 0) {
    if (!answered) p.kill("SIGKILL");
    SKIP = answered ? `libvirtd refused a minimal definition: ${(await new Response(p.stderr).text()).slice(0, 200)}` : "libvirtd took over 30 s to define a minimal domain here";
    await daemon.stop();
    daemon = null;
  }
}
if (SKIP) console.warn(`skipping the display sockets on libvirt test: ${SKIP}`);

/** Sends a SPICE link message (main channel, no capabilities) and returns the first 20 bytes of the reply. */
function spiceLink(path: string): Promise<Buffer> {
  const mess = Buffer.alloc(18);
  mess.writeUInt32LE(0, 0); // connection id
  mess.writeUInt8(1, 4); // channel type: main
  mess.writeUInt8(0, 5); // channel id
  mess.writeUInt32LE(0, 6); // common caps
  mess.writeUInt32LE(0, 10); // channel caps
  mess.writeUInt32LE(18, 14); // caps offset
  const header = Buffer.alloc(16);
  header.write("REDQ", 0, "latin1");
  header.writeUInt32LE(2, 4);
  header.writeUInt32LE(2, 8);
  header.writeUInt32LE(mess.length, 12);
  return firstBytes(path, Buffer.concat([header, mess]), 20);
}

function firstBytes(path: string, send: Buffer | null, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = connect(path, () => send && c.write(send));
    const timer = setTimeout(() => (c.destroy(), reject(new Error(`no reply on ${path} in 10 s`))), 10_000);
    c.on("data", (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= n) {
        clearTimeout(timer);
        c.destroy();
        resolve(all.subarray(0, n));
      }
    });
    c.on("error", (e) => (clearTimeout(timer), reject(e)));
  });
}

/** Connects to a unix socket as another user (setpriv); prints "connected" or the error code. */
function connectAs(uid: number, gid: number, groups: number[], path: string): string {
  const script = `require("net").connect(process.argv[1]).on("connect",()=>{console.log("connected");process.exit(0)}).on("error",e=>{console.log(e.code);process.exit(0)})`;
  const ids = ["--reuid", String(uid), "--regid", String(gid), ...(groups.length ? ["--groups", groups.join(",")] : ["--clear-groups"])];
  const r = Bun.spawnSync(["timeout", "20", "setpriv", ...ids, process.execPath, "-e", script, path], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/tmp" } });
  return (r.stdout.toString().trim() || r.stderr.toString().trim()).split("\n").pop()!;
}

/** TCP sockets in LISTEN state that process `pid` holds (its fds against /proc/net/tcp{,6}). */
function tcpListens(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec((() => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ""; } })());
    if (m) inodes.add(m[1]!);
  }
  const out: string[] = [];
  for (const table of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === "0A" && inodes.has(f[9]!)) out.push(f[1]!);
    }
  }
  return out;
}

describe.skipIf(SKIP !== null)(`display sockets of VMs whose QEMU runs as ${QEMU_AS.user}, on a real libvirtd`, () => {
  const tag = String(process.pid % 100000);
  const group = `nspg${tag}`;
  const member = `nspm${tag}`;
  const outsider = `nspo${tag}`;
  const spiceDir = join(dir.path, "spice");
  const db = openDatabase(join(dir.path, "neuron.db"));
  const virsh = new Virsh({ bin: "virsh", uri: daemon?.uri ?? "test:///default" });
  const qemuDir = daemon?.hostPath("/var/lib/libvirt/qemu") ?? "/nonexistent";
  const vms = new VmService({
    virsh,
    audit: vmAuditRepo(db.db),
    resolver: noPassthrough,
    settings: { stateDir: dir.path, shmDir: daemon?.shmDir ?? "/dev/shm", qemuImg: "qemu-img", root: "/", targetRoot: join(dir.path, "target"), spiceDir, libvirtQemuDir: qemuDir, adminGroup: group },
    shmOwner: () => ({ uid: 0, gid: kvmGid!, user: "root" }),
    cpuVendor: () => "other",
    domainType: "qemu",
  });
  const created: string[] = [];
  const users: string[] = [];

  afterAll(async () => {
    for (const name of created) await virsh.destroy(name).catch(() => undefined);
    await daemon?.stop();
    db.close();
    for (const u of users) sh(["userdel", u]);
    sh(["groupdel", group]);
  }, 60_000);

  const spec = (name: string, graphics: "spice" | "vnc") => ({ name, template: "linux", vcpus: 1, memoryMiB: 256, network: { kind: "none" }, graphics, resolution: { width: 640, height: 480 } });
  const start = async (name: string) => {
    created.push(name);
    return vms.start(name, "test").catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await Bun.file(join(daemon!.dir, "log", "qemu", `${name}.log`)).text().catch(() => "")}`);
    });
  };

  test("SPICE: the socket in the 2750 directory, 0660 to the admin group; root links, a member connects, an outsider cannot; no TCP port; doctor", async () => {
    for (const argv of [["groupadd", group], ["useradd", "-M", "-N", "-g", group, "-s", "/usr/sbin/nologin", member], ["useradd", "-M", "-N", "-g", "nogroup", "-s", "/usr/sbin/nologin", outsider]]) {
      const r = sh(argv);
      expect(r.err).toBe("");
      if (argv[0] === "useradd") users.push(argv[argv.length - 1]!);
    }
    const gid = idOf("/etc/group", group)!;
    const memberUid = idOf("/etc/passwd", member)!;
    const outsiderUid = idOf("/etc/passwd", outsider)!;
    const owner = statSync(qemuDir);

    const result = await vms.create(spec("spicevm", "spice"), "test");
    expect(result.xml).toContain(`<listen type="socket" socket="${spiceDir}/spicevm.spice"/>`);
    expect(result.xml).not.toMatch(/type="address"|autoport|port=/);
    const ini = readFileSync(vmSideFiles({ stateDir: dir.path, targetRoot: join(dir.path, "target") }, "spicevm").clientIni, "utf8");
    expect(ini).toContain(`[spice]\nhost=${spiceDir}/spicevm.spice\nport=0\n`);

    const details = await start("spicevm");
    expect(details.state).toBe("running");
    const socket = vmGraphicsSocket(spiceDir, "spicevm", "spice");
    expect(details.display).toEqual([{ type: "spice", sockets: [socket], tcp: [] }]);
    const d = statSync(spiceDir);
    expect([d.uid, d.gid, d.mode & 0o7777]).toEqual([owner.uid, gid, 0o2750]);
    const s = statSync(socket);
    expect(s.isSocket()).toBe(true);
    // QEMU created it as its user; vm start gave it the admin group and 0660
    expect([s.uid, s.gid, s.mode & 0o7777]).toEqual([owner.uid, gid, 0o660]);
    const audit = vmAuditRepo(db.db).forVm("spicevm").find((r) => r.action === "vm.start")!;
    console.log(`SPICE socket as QEMU (${QEMU_AS.user}) created it: ${JSON.stringify(audit.details)}`);

    // root: SPICE's link reply, no ticket asked (the socket's directory is the gate)
    const reply = await spiceLink(socket);
    expect(reply.subarray(0, 4).toString("latin1")).toBe("REDQ");
    expect(reply.readUInt32LE(4)).toBe(2);
    expect(reply.readUInt32LE(16)).toBe(0); // SPICE_LINK_ERR_OK
    // the desktop user's looking-glass-client (admin group) connects; anybody else cannot even reach the path
    expect(connectAs(memberUid, gid, [gid], socket)).toBe("connected");
    expect(connectAs(outsiderUid, idOf("/etc/group", "nogroup") ?? 65534, [], socket)).toBe("EACCES");
    expect(connectAs(65534, 65534, [kvmGid!], socket)).toBe("EACCES");

    // QEMU listens on no TCP port at all
    const pid = Number(readFileSync(daemon!.hostPath("/run/libvirt/qemu/spicevm.pid"), "utf8").trim());
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain(`addr=${socket}`);
    expect(tcpListens(pid)).toEqual([]);

    const config = testConfig({ libvirtUri: daemon!.uri, spiceDir, libvirtQemuDir: qemuDir, adminGroup: group });
    expect(await checkVmGraphics(config)).toEqual({ id: "vm-graphics", title: "VM displays (SPICE/VNC on unix sockets)", status: "ok", detail: `no display on TCP; 1 running display socket(s) in ${spiceDir}` });
    // a VM defined the old way (SPICE on 127.0.0.1 without a password) is named until it is redefined
    await virsh.define(
      `<domain type="qemu"><name>oldvm</name><memory unit="MiB">64</memory><os><type arch="x86_64" machine="q35">hvm</type></os><devices><graphics type="spice" autoport="yes"><listen type="address" address="127.0.0.1"/></graphics></devices></domain>`,
    );
    const warned = await checkVmGraphics(config);
    expect(warned.status).toBe("warn");
    expect(warned.detail).toBe(`oldvm: SPICE listens on TCP (address 127.0.0.1) without a password: redefine the VM (its display then uses a unix socket in ${spiceDir})`);
    await virsh.undefine("oldvm");

    // a VM that went down behind the appliance's back leaves its socket behind (QEMU does not
    // unlink it); the next start binds over it and secures it again
    await virsh.destroy("spicevm");
    expect(statSync(socket).isSocket()).toBe(true);
    await start("spicevm");
    expect(statSync(socket).mode & 0o7777).toBe(0o660);
    expect((await spiceLink(socket)).subarray(0, 4).toString("latin1")).toBe("REDQ");
    // vm stop removes it
    await vms.stop("spicevm", { force: true }, "test");
    expect(existsSync(socket)).toBe(false);
  }, 120_000);

  test("VNC: the socket in the same directory, the RFB banner to root, closed to an outsider, no TCP port", async () => {
    await vms.create(spec("vncvm", "vnc"), "test");
    const ini = readFileSync(vmSideFiles({ stateDir: dir.path, targetRoot: join(dir.path, "target") }, "vncvm").clientIni, "utf8");
    expect(ini).toContain("[spice]\nenable=no\n");
    await start("vncvm");
    const socket = vmGraphicsSocket(spiceDir, "vncvm", "vnc");
    const s = statSync(socket);
    expect([s.isSocket(), s.gid, s.mode & 0o7777]).toEqual([true, idOf("/etc/group", group)!, 0o660]);
    expect((await firstBytes(socket, null, 12)).toString("latin1")).toMatch(/^RFB 003\.00\d\n$/);
    expect(connectAs(idOf("/etc/passwd", outsider)!, 65534, [], socket)).toBe("EACCES");
    const pid = Number(readFileSync(daemon!.hostPath("/run/libvirt/qemu/vncvm.pid"), "utf8").trim());
    expect(tcpListens(pid)).toEqual([]);
    await vms.stop("vncvm", { force: true }, "test");
    await vms.remove("vncvm", {}, "test");
    expect(existsSync(socket)).toBe(false);
  }, 120_000);
});
