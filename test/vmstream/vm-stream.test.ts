/**
 * A real VM streamed end to end, on a private real libvirtd (test/vm/libvirtd.ts):
 *
 *   the appliance's definition of a VM (buildDomainXml: IVSHMEM shmem, its own QMP
 *   socket through <qemu:commandline>), adjusted only to boot the tiny test kernel
 *   under TCG, started through VmService (which prepares the QMP directory);
 *   inside the guest our producer writes Looking Glass frames into the ivshmem BAR;
 *   the GameStream host captures them from the shm file, encodes and sends them to
 *   the spec test client, which reassembles decodable H.264 (ffprobe);
 *   input sent over the control stream reaches the guest's evdev devices through the
 *   VM's QMP socket; F12 makes the guest power off, libvirt reports the domain shut
 *   off, and the video source ends the session with the reason "VM <name> shut down".
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { enetAvailable } from "../../ffi/enet.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { AppsService } from "../../src/apps/service.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { pairingsRepo } from "../../src/db/repos/pairings.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import { openDatabase } from "../../src/db/client.ts";
import { ControlType } from "../../src/gamestream/control/envelope.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { CODEC } from "../../src/gamestream/constants.ts";
import { GameStreamService } from "../../src/gamestream/service.ts";
import type { SourceEnd } from "../../src/gamestream/video/stream.ts";
import { virshStateProbe } from "../../src/gamestream/video/vm-state.ts";
import { encodeInputEvent } from "../../src/input/encode.ts";
import { silentLogger } from "../../src/log.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { vmQmpSocket } from "../../src/vm/qmp-socket.ts";
import { parseSpec, VmService } from "../../src/vm/service.ts";
import type { Virsh } from "../../src/vm/virsh.ts";
import { domainTree, serializeXml } from "../../src/vm/xml.ts";
import { probeStream } from "../capture/ffmpeg.ts";
import { ControlTestClient } from "../gamestream/control-client.ts";
import { freeBasePort } from "../gamestream/helpers.ts";
import { launchSession, pairTestFingerprint, setTestStream } from "../gamestream/control-helpers.ts";
import { VideoTestClient } from "../gamestream/video-client.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { waitFor } from "../input/qemu.ts";
import { libvirtdUnavailable, startLibvirtd, TEST_VIRSH_TIMEOUT_MS, type PrivateLibvirtd } from "../vm/libvirtd.ts";
import { buildStreamGuest, streamGuestUnavailable } from "./guest.ts";

const SKIP = libvirtdUnavailable() ?? streamGuestUnavailable() ?? (enetAvailable() ? null : "libenet.so.7 is not installed") ?? (Bun.which("ffprobe") ? null : "ffprobe is not installed");
if (SKIP) console.warn(`skipping the VM streaming test: ${SKIP}`);

const VM = "lgvm";
const W = 320;
const H = 240;
const EV_KEY = 1;
const KEY_A = 30;

describe.skipIf(SKIP !== null)("a real VM streamed: IVSHMEM frames out, input in, shutdown ends the session", () => {
  const dir = tempDir("neuron-vmstream-");
  let daemon: PrivateLibvirtd;
  let vms: VmService;
  let virsh: Virsh;
  let db: ReturnType<typeof openDatabase>;
  let service: GameStreamService;
  const consoleLog = join(dir.path, "console.log");
  const ended: { session: string; end: SourceEnd }[] = [];

  beforeAll(async () => {
    daemon = await startLibvirtd();
    const config = testConfig({
      stateDir: dir.path,
      shmDir: daemon.shmDir,
      qmpDir: join(dir.path, "qmp"),
      libvirtQemuDir: daemon.hostPath("/var/lib/libvirt/qemu"),
      libvirtUri: daemon.uri,
      libvirtTimeoutMs: TEST_VIRSH_TIMEOUT_MS,
      gamestreamHost: "127.0.0.1",
      gamestreamPort: freeBasePort(),
      mdns: false,
      hostname: "neuron-test",
    });
    db = openDatabase(config.dbPath);
    virsh = daemon.virsh();
    vms = new VmService({
      virsh,
      audit: vmAuditRepo(db.db),
      resolver: noPassthrough,
      settings: { stateDir: dir.path, shmDir: daemon.shmDir, qemuImg: "qemu-img", root: "/", targetRoot: join(dir.path, "target"), qmpDir: config.qmpDir, libvirtQemuDir: config.libvirtQemuDir },
      shmOwner: () => null,
      cpuVendor: () => "other",
      domainType: "qemu",
    });
    const apps = new AppsService(appsRepo(db.db));
    apps.seedDefaults();
    const pairings = pairingsRepo(db.db);
    pairTestFingerprint(pairings);
    service = new GameStreamService({
      config,
      apps,
      pairings,
      crypto: gameStreamCrypto(NativeCrypto.load()),
      log: silentLogger,
      codecModeSupport: () => CODEC.H264,
      nativePath: NativeLibrary.load().path,
      vmState: virshStateProbe("virsh", daemon.uri),
      sourceLiveness: { stallMs: 1500, checkIntervalMs: 500 },
      onSourceEnded: (s, end) => void ended.push({ session: s.id, end }),
    });
    await service.start();
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    if (daemon) {
      if ((await virsh.state(VM).catch(() => "gone")) === "running") await virsh.destroy(VM).catch(() => undefined);
      await daemon.stop();
    }
    db?.close();
    dir.cleanup();
  }, 60_000);

  test(
    "guest frames reach the client as decodable H.264, its input reaches the guest, its power-off ends the session",
    async () => {
      const guest = buildStreamGuest(join(dir.path, "guest"), { width: W, height: H, fps: 30 });
      // The appliance's definition, with the tiny kernel booted directly instead of UEFI firmware.
      const spec = parseSpec({ name: VM, template: "linux", vcpus: 1, memoryMiB: 256, network: { kind: "none" }, graphics: "none", resolution: { width: 640, height: 480 } });
      const tree = domainTree(spec, { domainType: "qemu", qmpSocket: vmQmpSocket(join(dir.path, "qmp"), VM) }) as { domain: Record<string, unknown> & { devices: Record<string, unknown> } };
      tree.domain.os = {
        type: { "@_arch": "x86_64", "@_machine": "q35", "#text": "hvm" },
        kernel: guest.kernel.vmlinuz,
        initrd: guest.initramfs,
        cmdline: "console=ttyS0 quiet panic=-1",
      };
      tree.domain.devices.serial = { "@_type": "file", source: { "@_path": consoleLog }, target: { "@_port": "0" } };
      await virsh.define(serializeXml(tree));
      const details = await vms.start(VM, "test");
      expect(details.state).toBe("running");
      const qmpSocket = vmQmpSocket(join(dir.path, "qmp"), VM);
      expect(statSync(qmpSocket).isSocket()).toBe(true);
      expect(statSync(join(dir.path, "qmp")).mode & 0o777).toBe(0o750);
      const shm = join(daemon.shmDir, `looking-glass-${VM}`);
      expect(statSync(shm).size).toBe(16 * 1024 * 1024);

      const { key, session } = launchSession({ service }, VM, { appId: 2, appName: VM, width: W, height: H, fps: 30 });
      setTestStream(session, { bitrateKbps: 2000, encryptVideo: true });
      service.sessions.markPlaying(session);
      expect(service.video!.stream.get(session.id)!.stats().source).toBe("vm");

      const nativeCrypto = NativeCrypto.load();
      const gcm = nativeCrypto.aesGcm(key);
      // one data shard of each block dropped on purpose: the client rebuilds it from parity
      const video = new VideoTestClient({ port: service.ports.video, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024, gcm, drop: () => 1 });
      const control = new ControlTestClient(key);
      const consoleText = () => (existsSync(consoleLog) ? readFileSync(consoleLog, "utf8") : "");
      const guestEvents = () => [...consoleText().matchAll(/^EV \d+ (\d+) (\d+) (-?\d+)/gm)].map((m) => ({ type: Number(m[1]), code: Number(m[2]), value: Number(m[3]) }));
      try {
        await video.start();
        // the guest boots under TCG (several seconds), then its frames flow
        await waitFor(() => video.frames.length >= 20, 60_000, `20 frames from the guest (console: ${consoleText().slice(-400)})`);
        expect(video.errors).toEqual([]);
        expect(video.frames[0]!.frameType).toBe(2);
        expect(video.frames.some((f) => f.recovered > 0)).toBe(true);
        const file = join(dir.path, "vm.h264");
        const received = video.frames.length;
        writeFileSync(file, video.annexB());
        const probed = await probeStream(file, "h264");
        expect(probed).toMatchObject({ codec: "h264", width: W, height: H });
        expect(probed.frames).toBe(received);
        expect(probed.keyFrames[0]).toBe(0);

        // input: the control stream → the VM's QMP socket → virtio keyboard → the guest's evdev
        await waitFor(() => consoleText().includes("READY"), 30_000, "evprint in the guest");
        expect(await control.connect(service.ports.control, session.connectData)).toBe(true);
        await waitFor(() => service.control.stats(session.id)?.input != null, 10_000, "the QMP input backend");
        const send = (ev: Parameters<typeof encodeInputEvent>[0]) => control.send(ControlType.INPUT, encodeInputEvent(ev), { channel: 2 });
        send({ kind: "key", down: true, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });
        send({ kind: "key", down: false, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });
        await waitFor(() => guestEvents().filter((e) => e.type === EV_KEY && e.code === KEY_A).length >= 2, 20_000, "key A in the guest");
        expect(guestEvents().filter((e) => e.type === EV_KEY && e.code === KEY_A).map((e) => e.value)).toEqual([1, 0]);

        // F12: the guest powers off; libvirt sees the domain shut off; the source ends the session
        send({ kind: "key", down: true, vk: 0x7b, keyCode: 0x7b, modifiers: 0, flags: 0 });
        await waitFor(() => ended.length > 0, 30_000, "the source to end");
        expect(consoleText()).toContain("GUEST-POWEROFF");
        expect(ended).toEqual([{ session: session.id, end: { reason: `VM ${VM} shut down`, lastError: expect.any(Number) } }]);
        expect(await virsh.state(VM)).toBe("shut off");
        expect(service.sessions.active).toBeNull();
        // the session's record keeps why it ended
        expect(service.sessions.history()[0]).toMatchObject({ id: session.id, reason: "source-ended", detail: `VM ${VM} shut down` });
        expect(service.video!.stream.get(session.id)).toBeUndefined();
      } finally {
        control.close();
        await video.close();
        service.sessions.endAll("ended-by-api");
        gcm.close();
        nativeCrypto.close();
      }
    },
    120_000,
  );
});
