/**
 * RTSP handshake benchmark (prints figures, asserts nothing): the whole
 * OPTIONS … PLAY sequence (7 requests, one TCP connection each) against the
 * GameStream host on 127.0.0.1, encrypted (rtspenc://) and plain, measured in
 * the same run; per handshake median/p99 and per request median.
 *
 *   npm run bench:rtsp     (BENCH_HANDSHAKES, default 200 each)
 */
import { gameStreamHost } from "../gamestream/helpers.ts";
import { RtspTestClient } from "../gamestream/rtsp-client.ts";
import { launchDirect, SAMPLE_SDP } from "../gamestream/rtsp-fixtures.ts";

const N = Math.min(Number(process.env.BENCH_HANDSHAKES ?? 200), 5000);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

const host = gameStreamHost();
try {
  const { rtsp } = await host.service.start();
  for (const encrypted of [true, false]) {
    const handshakes: number[] = [];
    const requests: number[] = [];
    for (let i = 0; i < N; i++) {
      const { key } = launchDirect(host, encrypted);
      const c = new RtspTestClient(rtsp, encrypted ? key : null);
      const steps = [() => c.options(), () => c.describe(), () => c.setup("audio/0/0"), () => c.setup("video/0/0"), () => c.setup("control/13/0"), () => c.announce(SAMPLE_SDP), () => c.play()];
      const t0 = performance.now();
      for (const step of steps) {
        const t = performance.now();
        const r = await step();
        requests.push(performance.now() - t);
        if (r.status !== 200) throw new Error(`status ${r.status}`);
      }
      handshakes.push(performance.now() - t0);
    }
    console.log(JSON.stringify({ case: encrypted ? "rtspenc" : "rtsp", handshakes: N, handshakeP50Ms: round(pct(handshakes, 50)), handshakeP99Ms: round(pct(handshakes, 99)), requestP50Ms: round(pct(requests, 50)), handshakesPerSec: round(1000 / (handshakes.reduce((a, b) => a + b, 0) / N), 1) }));
  }
} finally {
  await host.close();
}
