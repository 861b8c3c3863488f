/**
 * lumen/1 loss harness: one host and the reference client on 127.0.0.1, the client dropping
 * incoming datagrams at random (bursts of 1) and in bursts of 10, 0–30 %; adaptive FEC from the
 * client's loss reports. Prints, per setting, the share of frames the client reassembled
 * (whole: every data shard arrived or was rebuilt by RS16), how many needed FEC, the frames
 * that arrived after the first loss report (adaptation warm-up excluded), and latency.
 *
 *   npm run bench:lumen-loss [-- --seconds S] [--mode WxHxFPS]
 */
import { LumenClient, percentile } from "../../src/lumen/client.ts";
import { buildNative, enterPinWhenAsked, loadNatives, startHost, tempDir } from "../lumen/helpers.ts";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const seconds = Number(arg("seconds", "3"));
const [w, h, fps] = arg("mode", "640x360x60").split("x").map(Number) as [number, number, number];

buildNative();
const host = await startHost();
using dir = tempDir();
const first = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, pin: "1357", mode: { width: w, height: h, fps }, natives: loadNatives() });
await Promise.all([first.connect(), enterPinWhenAsked(host, "1357")]);
await first.stream(0.2);
first.close();

const rows: Record<string, string | number>[] = [];
for (const burst of [1, 10]) {
  for (const pct of [0, 5, 10, 15, 20, 25, 30]) {
    const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, mode: { width: w, height: h, fps }, natives: loadNatives(), loss: pct / 100, burst, seed: 1000 + pct });
    c.keepStreams = false;
    await c.connect();
    const indices: number[] = [];
    c.setFrameHandler((info) => void indices.push(info.frameIndex));
    const r = await c.stream(seconds);
    c.close();
    // settled: frames after the first quarter second (a dozen loss reports: adaptation has happened)
    const settled = indices.filter((i) => i > Math.ceil(fps * 0.25));
    const sentSettled = Math.max(0, r.framesSent - Math.ceil(fps * 0.25));
    rows.push({
      loss: `${pct}%`, burst, sent: r.framesSent, received: r.framesReceived, ratio: (r.framesReceived / Math.max(1, r.framesSent)).toFixed(4),
      recovered: r.framesRecovered, settledRatio: (settled.length / Math.max(1, sentSettled)).toFixed(4),
      p50Ms: percentile(r.latenciesMs, 50).toFixed(2), p99Ms: percentile(r.latenciesMs, 99).toFixed(2), dropped: r.droppedSim,
    });
    console.log(JSON.stringify(rows.at(-1)));
  }
}
console.table(rows);
await host.stop();
