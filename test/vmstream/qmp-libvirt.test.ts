/**
 * The QMP socket of a VM the appliance defines, on a real libvirtd that runs QEMU
 * as an unprivileged user the way distributions do (Debian: libvirt-qemu, group
 * kvm): VmService.start prepares the directory for that user, QEMU creates the
 * socket in it, the appliance connects and drives input, nobody else can enter,
 * and the socket is gone when the VM stops.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import { QmpClient } from "../../src/input/qmp-client.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { idOf } from "../../src/vm/host.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { vmQmpSocket } from "../../src/vm/qmp-socket.ts";
import { checkVmQmp } from "../../src/vm/qmp-doctor.ts";
import { VmService } from "../../src/vm/service.ts";
import type { Virsh } from "../../src/vm/virsh.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { waitFor } from "../input/qemu.ts";
import { libvirtdUnavailable, startLibvirtd, type PrivateLibvirtd } from "../vm/libvirtd.ts";

const QEMU_USER = "libvirt-qemu";
const uid = idOf("/etc/passwd", QEMU_USER);
const kvm = idOf("/etc/group", "kvm");
const QEMU = { user: QEMU_USER, group: "kvm" };
// the shared check: tools, QEMU's user and group, and a /dev/kvm that user can open (prepared for the daemon if not)
const SKIP = libvirtdUnavailable({ qemuUser: QEMU });
if (SKIP) console.warn(`skipping the QMP-socket-on-libvirt test: ${SKIP}`);

describe.skipIf(SKIP !== null)(`QMP socket of a VM whose QEMU runs as ${QEMU_USER}`, () => {
  const dir = tempDir("neuron-qmplv-");
  let daemon: PrivateLibvirtd;
  let db: ReturnType<typeof openDatabase>;
  let vms: VmService;
  let virsh: Virsh;
  const qmpDir = join(dir.path, "qmp");

  beforeAll(async () => {
    chmodSync(dir.path, 0o755); // QEMU walks into qmpDir below it
    daemon = await startLibvirtd({ qemuUser: QEMU });
    db = openDatabase(join(dir.path, "neuron.db"));
    virsh = daemon.virsh();
    vms = new VmService({
      virsh,
      audit: vmAuditRepo(db.db),
      resolver: noPassthrough,
      settings: { stateDir: dir.path, shmDir: daemon.shmDir, qemuImg: "qemu-img", root: "/", targetRoot: join(dir.path, "target"), qmpDir, libvirtQemuDir: daemon.hostPath("/var/lib/libvirt/qemu") },
      // the IVSHMEM file as the package provisions it: group kvm, 0660
      shmOwner: () => ({ uid: 0, gid: kvm!, user: "root" }),
      cpuVendor: () => "other",
      domainType: "qemu",
    });
  }, 60_000);

  afterAll(async () => {
    if (daemon) {
      await virsh.destroy("qmpvm").catch(() => undefined);
      await daemon.stop();
    }
    db?.close();
    dir.cleanup();
  }, 60_000);

  test("start → the socket exists, owned by QEMU's user in a 0750 directory of that user; input works; stop removes it", async () => {
    // libvirt chowns its QEMU directory to the user it runs QEMU as: that is whom qmpDir goes to
    expect(statSync(daemon.hostPath("/var/lib/libvirt/qemu")).uid).toBe(uid!);
    await vms.create({ name: "qmpvm", template: "linux", vcpus: 1, memoryMiB: 256, network: { kind: "none" }, graphics: "none", resolution: { width: 640, height: 480 } }, "test");
    // the linux template boots UEFI: the firmware's variable store must be QEMU's to write
    const details = await vms.start("qmpvm", "test").catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await Bun.file(join(daemon.dir, "log", "qemu", "qmpvm.log")).text().catch(() => "")}`);
    });
    expect(details.state).toBe("running");
    const socket = vmQmpSocket(qmpDir, "qmpvm");
    await waitFor(() => existsSync(socket), 10_000, "the QMP socket");
    const d = statSync(qmpDir);
    expect([d.uid, d.mode & 0o7777]).toEqual([uid!, 0o750]);
    const s = statSync(socket);
    expect(s.isSocket()).toBe(true);
    expect(s.uid).toBe(uid!); // QEMU made it, as its user

    // doctor: the running VM is fine; a VM defined by hand without the monitor is named
    const doctorConfig = testConfig({ libvirtUri: daemon.uri, qmpDir, libvirtQemuDir: daemon.hostPath("/var/lib/libvirt/qemu") });
    expect(await checkVmQmp(doctorConfig)).toMatchObject({ id: "vm-qmp", status: "ok", detail: `1 VM(s) with their QMP monitor in ${qmpDir}` });
    await virsh.define(`<domain type="qemu"><name>handmade</name><memory unit="MiB">64</memory><os><type arch="x86_64" machine="q35">hvm</type></os></domain>`);
    const warned = await checkVmQmp(doctorConfig);
    expect(warned.status).toBe("warn");
    expect(warned.detail).toBe(`handmade: defined without the appliance's QMP monitor (${qmpDir}/handmade.qmp): streaming clients' input cannot reach it`);
    await virsh.undefine("handmade");

    // the appliance (root here) connects; QEMU answers and takes input
    const client = new QmpClient({ socketPath: socket });
    await client.connect();
    const status = (await client.execute("query-status")) as { status: string };
    expect(status.status).toBe("running");
    client.close();
    const backend = new QmpInputBackend({ socketPath: socket, reconnect: false });
    await backend.open();
    expect(backend.capabilities.keyboard).toBe(true);
    backend.submit([{ kind: "key", down: true, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 }, { kind: "key", down: false, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 }]);
    await backend.flush();
    expect(backend.stats()).toMatchObject({ delivered: 2, refusedBatches: 0 });
    await backend.close();

    // another unprivileged user cannot reach the monitor: the directory is closed to it
    const other = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", `test -e '${socket}' && echo visible || echo hidden`], { stdout: "pipe", stderr: "pipe" });
    expect(other.stderr.toString()).toBe("");
    expect(other.stdout.toString().trim()).toBe("hidden");

    const stopped = await vms.stop("qmpvm", { force: true }, "test");
    expect(stopped.state).toBe("shut off");
    await waitFor(() => !existsSync(socket), 10_000, "QEMU to remove its socket");
    // a directory whose owner was changed meanwhile is given back to QEMU's user at the next start
    chownSync(qmpDir, 0, 0);
    expect((await checkVmQmp(testConfig({ libvirtUri: daemon.uri, qmpDir, libvirtQemuDir: daemon.hostPath("/var/lib/libvirt/qemu") }))).detail).toBe(
      `${qmpDir} belongs to 0:0, not to QEMU's user ${uid}:${kvm} (vm start repairs it)`,
    );
    const again = await vms.start("qmpvm", "test");
    expect(again.state).toBe("running");
    await waitFor(() => existsSync(socket), 10_000, "the QMP socket after a restart");
    expect(statSync(qmpDir).uid).toBe(uid!);
    await vms.stop("qmpvm", { force: true }, "test");
  }, 90_000);
});
