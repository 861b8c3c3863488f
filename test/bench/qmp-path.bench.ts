/**
 * How should input reach a libvirt VM? Per-event latency of the three ways, measured
 * on the same running domain of a private real libvirtd (prints figures, asserts nothing):
 *  - direct: the appliance's own QMP socket (<qemu:commandline> -qmp), one persistent
 *    connection, one `input-send-event` per key awaited;
 *  - virsh-per-event: `virsh qemu-monitor-command DOMAIN '{json}'`, a process per event;
 *  - libvirt-persistent: libvirt's QMP passthrough over one held connection (an
 *    interactive virsh fed on stdin: each command is one libvirt RPC → QMP → reply).
 * Bounded: fixed counts, one VM (TCG, no guest OS; its vCPU pinned to the second core),
 * everything under a temp dir.
 *
 *   bun test/bench/qmp-path.bench.ts
 */
import { join } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { vmAuditRepo } from "../../src/db/repos/vm-audit.ts";
import { QmpClient } from "../../src/input/qmp-client.ts";
import { noPassthrough } from "../../src/vm/passthrough.ts";
import { vmQmpSocket } from "../../src/vm/qmp-socket.ts";
import { VmService } from "../../src/vm/service.ts";
import { tempDir } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd } from "../vm/libvirtd.ts";

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const summary = (name: string, ms: number[]) =>
  print({ case: name, events: ms.length, p50Ms: round(pct(ms, 50)), p99Ms: round(pct(ms, 99)), meanMs: round(ms.reduce((a, b) => a + b, 0) / ms.length) });

const why = libvirtdUnavailable();
if (why) {
  console.log(JSON.stringify({ case: "skipped", reason: why }));
  process.exit(0);
}

const keyEvent = (down: boolean) => ({ events: [{ type: "key", data: { down, key: { type: "qcode", data: "a" } } }] });
const dir = tempDir("neuron-qmp-bench-");
const daemon = await startLibvirtd();
const db = openDatabase(join(dir.path, "neuron.db"));
const virsh = daemon.virsh();
const qmpDir = join(dir.path, "qmp");
const vms = new VmService({
  virsh,
  audit: vmAuditRepo(db.db),
  resolver: noPassthrough,
  settings: { stateDir: dir.path, shmDir: daemon.shmDir, qemuImg: "qemu-img", root: "/", targetRoot: join(dir.path, "target"), qmpDir, libvirtQemuDir: daemon.hostPath("/var/lib/libvirt/qemu") },
  shmOwner: () => null,
  cpuVendor: () => "other",
  domainType: "qemu",
});
try {
  await vms.create({ name: "bench", template: "linux", vcpus: 1, memoryMiB: 256, network: { kind: "none" }, graphics: "none", resolution: { width: 640, height: 480 } });
  await vms.start("bench");
  // Under TCG the guest's vCPU thread spins on a whole core (input-send-event is refused
  // while paused); pin it to the second core, the monitor (emulator threads) to the first.
  for (const argv of [["vcpupin", "bench", "0", "1"], ["emulatorpin", "bench", "0"]]) {
    const r = Bun.spawnSync(["virsh", "-c", daemon.uri, ...argv], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) console.log(JSON.stringify({ case: "note", pin: argv.join(" "), error: r.stderr.toString().trim() }));
  }

  // direct: our own QMP socket, one connection held
  {
    const client = new QmpClient({ socketPath: vmQmpSocket(qmpDir, "bench") });
    await client.connect();
    for (let i = 0; i < 200; i++) await client.execute("input-send-event", keyEvent(i % 2 === 0));
    const ms: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = performance.now();
      await client.execute("input-send-event", keyEvent(i % 2 === 0));
      ms.push(performance.now() - t);
    }
    summary("direct-qmp-socket", ms);
    client.close();
  }

  // virsh qemu-monitor-command: a process per event
  {
    const ms: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      const r = Bun.spawnSync(["virsh", "-c", daemon.uri, "qemu-monitor-command", "bench", JSON.stringify({ execute: "input-send-event", arguments: keyEvent(i % 2 === 0) })], { stdout: "pipe", stderr: "pipe" });
      ms.push(performance.now() - t);
      if (r.exitCode !== 0) throw new Error(`virsh qemu-monitor-command: ${r.stderr.toString()}`);
    }
    summary("virsh-process-per-event", ms);
  }

  // libvirt's passthrough on one held connection: virsh's shell on stdin, one line per command
  {
    const proc = Bun.spawn(["virsh", "-q", "-c", daemon.uri], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const reader = proc.stdout.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    const nextReply = async () => {
      for (;;) {
        const nl = buf.indexOf('"return"');
        const end = nl >= 0 ? buf.indexOf("\n", nl) : -1;
        if (end >= 0) {
          buf = buf.slice(end + 1);
          return;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("virsh shell ended");
        buf += decoder.decode(value);
      }
    };
    const send = async (down: boolean) => {
      const json = JSON.stringify({ execute: "input-send-event", arguments: keyEvent(down) });
      proc.stdin.write(`qemu-monitor-command bench '${json}'\n`);
      proc.stdin.flush();
      await nextReply();
    };
    for (let i = 0; i < 50; i++) await send(i % 2 === 0);
    const ms: number[] = [];
    for (let i = 0; i < 500; i++) {
      const t = performance.now();
      await send(i % 2 === 0);
      ms.push(performance.now() - t);
    }
    summary("libvirt-passthrough-held-connection", ms);
    proc.stdin.end();
    await proc.exited;
  }
} finally {
  await virsh.destroy("bench").catch(() => undefined);
  await daemon.stop();
  db.close();
  dir.cleanup();
}
