/**
 * The frames channel of a VM the appliance defines, on a real libvirtd that runs QEMU as an
 * unprivileged user the way distributions do (Debian: libvirt-qemu, group kvm): VmService.start
 * gives frameSocketDir to that user (0750), the NVF1 listener's socket takes the directory's
 * owner, and QEMU — started before the listener existed — connects to it as its own user.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import { resolveNativePath } from "../../ffi/native.ts";
import { VsockNative } from "../../ffi/vsock.ts";
import { NvfListenerPool } from "../../src/capture/nvf-listeners.ts";
import { domainFrameChannel } from "../../src/capture/sources.ts";
import { openDatabase } from "../../src/db/client.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import { idOf } from "../../src/vm/host.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { VmService } from "../../src/vm/service.ts";
import type { Virsh } from "../../src/vm/virsh.ts";
import { vmFrameSocket } from "../../src/vm/xml.ts";
import { tempDir } from "../helpers/env.ts";
import { waitFor } from "../input/qemu.ts";
import { libvirtdUnavailable, startLibvirtd, type PrivateLibvirtd } from "../vm/libvirtd.ts";

const QEMU_USER = "libvirt-qemu";
const uid = idOf("/etc/passwd", QEMU_USER);
const kvm = idOf("/etc/group", "kvm");
const QEMU = { user: QEMU_USER, group: "kvm" };
const SKIP = libvirtdUnavailable({ qemuUser: QEMU });
if (SKIP) console.warn(`skipping the frames-channel-on-libvirt test: ${SKIP}`);

describe.skipIf(SKIP !== null)(`frames channel of a VM whose QEMU runs as ${QEMU_USER}`, () => {
  const dir = tempDir("neuron-frlv-");
  const frameDir = join(dir.path, "frames");
  let daemon: PrivateLibvirtd;
  let db: ReturnType<typeof openDatabase>;
  let vms: VmService;
  let virsh: Virsh;
  const native = new VsockNative(resolveNativePath({}));
  const pool = new NvfListenerPool(native);

  beforeAll(async () => {
    chmodSync(dir.path, 0o755); // QEMU walks into frameSocketDir below it
    daemon = await startLibvirtd({ qemuUser: QEMU });
    db = openDatabase(join(dir.path, "neuron.db"));
    virsh = daemon.virsh();
    vms = new VmService({
      virsh,
      audit: vmAuditRepo(db.db),
      resolver: noPassthrough,
      settings: { stateDir: dir.path, shmDir: daemon.shmDir, qemuImg: "qemu-img", root: "/", targetRoot: join(dir.path, "target"), libvirtQemuDir: daemon.hostPath("/var/lib/libvirt/qemu"), frameSocketDir: frameDir },
      shmOwner: () => ({ uid: 0, gid: kvm!, user: "root" }),
      cpuVendor: () => "other",
      domainType: "qemu",
    });
  }, 60_000);

  afterAll(async () => {
    pool.close();
    native.close();
    if (daemon) {
      await virsh.destroy("framesvm").catch(() => undefined);
      await daemon.stop();
    }
    db?.close();
    dir.cleanup();
  }, 60_000);

  test("start without a listener; the listener's socket is QEMU's to reach; QEMU connects as its user", async () => {
    await vms.create({ name: "framesvm", template: "linux", vcpus: 1, memoryMiB: 256, network: { kind: "none" }, graphics: "none", resolution: { width: 640, height: 480 }, frameChannel: true }, "test");
    const socket = vmFrameSocket(frameDir, "framesvm");
    expect(domainFrameChannel(await virsh.dumpxml("framesvm", true))).toEqual({ socketPath: socket });
    const details = await vms.start("framesvm", "test").catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await Bun.file(join(daemon.dir, "log", "qemu", "framesvm.log")).text().catch(() => "")}`);
    });
    expect(details.state).toBe("running");
    const d = statSync(frameDir);
    expect([d.uid, d.mode & 0o7777]).toEqual([uid!, 0o750]);

    const lease = pool.acquire({ kind: "unix", path: socket }, "VM framesvm");
    try {
      const s = statSync(socket);
      expect(s.isSocket()).toBe(true);
      expect([s.uid, s.mode & 0o777]).toEqual([uid!, 0o660]);
      // QEMU retries every 2 s; as libvirt-qemu it can reach the socket, so the listener accepts it
      await waitFor(() => lease.source.hello().connection >= 1, 15_000, "QEMU's frames chardev to connect");
      // a second reader of the same VM's frames is refused with the reason
      expect(() => pool.acquire({ kind: "unix", path: socket }, "VM framesvm")).toThrow("already go to another session");
    } finally {
      lease.release();
    }
    const stopped = await vms.stop("framesvm", { force: true }, "test");
    expect(stopped.state).toBe("shut off");
  }, 90_000);
});
