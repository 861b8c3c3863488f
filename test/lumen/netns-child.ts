/**
 * Runs inside a network namespace the test made (`ip netns exec`): a lumen/1 host and the
 * reference client on its loopback, with netfilter dropping a share of the host's UDP
 * datagrams to the client (iptables statistic match, no simulated loss), then prints the
 * client's counts as one JSON line.   bun netns-child.ts PROBABILITY SECONDS
 */
import { LumenClient, percentile } from "../../src/lumen/client.ts";
import { enterPinWhenAsked, loadNatives, startHost, tempDir } from "./helpers.ts";

const probability = Number(process.argv[2] ?? "0.2");
const seconds = Number(process.argv[3] ?? "2");
// netfilter on loopback sees a UDP GSO buffer (up to 46 datagrams) as one packet and drops it
// whole: per-datagram loss, as on a wire after segmentation, needs the sender without GSO
const gso = process.argv[4] === "gso";
const run = async (argv: string[]) => {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} failed: ${err}`);
};
await run(["ip", "link", "set", "lo", "up"]);
const host = await startHost({ gso });
// datagrams from the host's data port (UDP port + 1; QUIC holds the port itself) to the client: dropped by the kernel, at random
await run(["iptables", "-A", "INPUT", "-p", "udp", "--sport", String(host.dataPort), "-m", "statistic", "--mode", "random", "--probability", String(probability), "-j", "DROP"]);
using dir = tempDir();
const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, pin: "9753", mode: { width: 320, height: 240, fps: 60 }, natives: loadNatives() });
c.keepStreams = false;
await Promise.all([c.connect(), enterPinWhenAsked(host, "9753")]);
const indices: number[] = [];
c.setFrameHandler((info) => void indices.push(info.frameIndex));
const r = await c.stream(seconds);
c.close();
await host.stop();
console.log(JSON.stringify({ framesSent: r.framesSent, framesReceived: r.framesReceived, framesRecovered: r.framesRecovered, indices, p50Ms: percentile(r.latenciesMs, 50), droppedSim: r.droppedSim, datagrams: r.datagrams }));
