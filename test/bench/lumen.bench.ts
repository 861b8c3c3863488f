/**
 * lumen/1 benchmark on 127.0.0.1, one JSON line per case.
 *
 * latency (720p120, 1080p60): a lumen/1 host with the software encoder (libx264 through
 * ffi/capture.ts, test pattern frames) and the reference client in this process. Per frame:
 * capture (pixels ready) → reassembled at the client (its receiver's clock; same machine, so
 * the probes' offset is ~0), and in the same run the encoder's own time for that frame
 * (the whole encoder call: BGRA→I420, encode, packet out; encoderInside = what the encoder
 * itself times: conversion + avcodec). overheadMs = latency − encoder call time per frame
 * (p50/p99): the protocol's share (split, RS16, AES-GCM, sendmmsg, kernel, receive, open,
 * reassemble) plus scheduling on this shared 2-core machine. Goal: overhead p50 ≤ 0.5 ms.
 *
 * goodput: synthetic access units (256 KiB, 20 % parity on both paths) back to back:
 *   - lumenSendGbps: the lumen/1 sender alone (RS16 + AES-GCM + sendmmsg; nobody reads);
 *   - gamestreamSendGbps: the GameStream video sender on the same frames (RS8 in ≤ 4 blocks of
 *     255 shards + AES-GCM + sendmmsg) — the baseline in the same run;
 *   - lumenEndToEndGbps: sender and native receiver (recvmmsg with UDP GRO, open, reassemble) on one thread,
 *     every frame checked complete;
 *   - lumenReceiveGbps: the receiver alone — frames sent into the socket's buffer first, then
 *     timed: recvmmsg, replay window, AES-GCM open, reassembly of every frame; lumenReceiveGroGbps
 *     the same with UDP GRO on the socket (a GSO buffer per read, split natively);
 *   - lumenPipelinedGbps: the sender on the frame pump's thread (ffi LumenPump) while this
 *     thread receives and reassembles: the data plane as host and client run it.
 * Ratios are against the GameStream sender measured in the same run.
 *
 *   npm run bench:lumen [-- --seconds S]
 */
import { loadavg } from "node:os";
import { LumenPump, LumenReceiver, LumenSender } from "../../ffi/lumen.ts";
import { UdpSocket, VideoSender } from "../../ffi/stream.ts";
import { LumenClient, percentile } from "../../src/lumen/client.ts";
import { buildNative, enterPinWhenAsked, loadNatives, startHost, tempDir } from "../lumen/helpers.ts";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const seconds = Number(arg("seconds", "5"));
const only = arg("only", "latency,goodput").split(",");
const r2 = (v: number) => Math.round(v * 100) / 100;

buildNative();
const n = loadNatives();

if (only.includes("latency")) {
  const host = await startHost({ maxPixels: 1920 * 1080 });
  using dir = tempDir();
  const pairer = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, pin: "1470", mode: { width: 320, height: 240, fps: 30 }, natives: n });
  await Promise.all([pairer.connect(), enterPinWhenAsked(host, "1470")]);
  pairer.close();
  for (const [w, h, fps] of [[1280, 720, 120], [1920, 1080, 60]] as const) {
    const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, mode: { width: w, height: h, fps }, natives: n, codecs: ["h264"] });
    c.keepStreams = false;
    await c.connect();
    const session = host.sessions.get(c.sessionId)!;
    const perFrame: { lat: number; enc: number; call: number; sent: number }[] = [];
    c.setFrameHandler((info) => {
      const t = session.frameTimings.get(info.frameIndex);
      const lat = (Number(info.completeNs) - Number(info.captureNs)) / 1e6;
      if (t) perFrame.push({ lat, enc: t.encodeUs / 1000, call: t.encodeCallUs / 1000, sent: t.sentNs / 1e6 });
    });
    const r = await c.stream(seconds);
    c.close();
    const warm = perFrame.slice(Math.min(10, perFrame.length >> 2));
    const lat = warm.map((f) => f.lat), enc = warm.map((f) => f.enc), call = warm.map((f) => f.call);
    const over = warm.map((f) => f.lat - f.call), toKernel = warm.map((f) => f.sent - f.call);
    console.log(JSON.stringify({
      case: "latency", mode: `${w}x${h}x${fps}`, encoder: "libx264", frames: r.framesReceived, framesSent: r.framesSent, fps: r2(r.framesReceived / seconds),
      p50Ms: r2(percentile(lat, 50)), p99Ms: r2(percentile(lat, 99)), encoderP50Ms: r2(percentile(call, 50)), encoderP99Ms: r2(percentile(call, 99)), encoderInsideP50Ms: r2(percentile(enc, 50)),
      overheadP50Ms: r2(percentile(over, 50)), overheadP99Ms: r2(percentile(over, 99)), encodedToKernelP50Ms: r2(percentile(toKernel, 50)),
      recovered: r.framesRecovered, loadAvg1m: r2(loadavg()[0]!),
    }));
  }
  await host.stop();
}

if (only.includes("goodput")) {
  const AU = 256 * 1024;
  const au = new Uint8Array(AU);
  for (let i = 0; i < AU; i++) au[i] = (i * 2654435761) >>> 24;
  const keys = { key: new Uint8Array(16).fill(7), salt: new Uint8Array(4).fill(9), sessionId: 5 };
  const sink = UdpSocket.open(n.stream, "127.0.0.1", 0, { rcvbuf: 64 << 20 });
  const out = UdpSocket.open(n.stream, "127.0.0.1", 0, { sndbuf: 8 << 20 });
  const peer = { family: 4 as const, address: "127.0.0.1", port: sink.port };
  const frame = { captureNs: 0n, idr: false, codec: 0 as const, epoch: 0, lossPpm: 0, burst: 1, minPctX100: 2000, maxPctX100: 2000 };
  const timeFor = (ms: number, f: () => number) => {
    let bytes = 0, frames = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      bytes += f();
      frames++;
    }
    return { gbps: (bytes * 8) / ((performance.now() - t0) / 1000) / 1e9, frames };
  };
  const drain = new Uint8Array(65536);
  const emptySink = () => {
    while (sink.recv(drain)) {}
  };
  // lumen sender alone
  const tx = LumenSender.create(n.lumen, out, keys, { shardBytes: 1344, maxFrameBytes: 1 << 20 });
  tx.setPeer(peer);
  const gsTx = VideoSender.create(n.stream, out, { packetSize: 1392, fecPercent: 20, minFec: 2, key: new Uint8Array(16).fill(3), maxFrameBytes: 1 << 20 });
  gsTx.setPeer(peer);
  const ms = Math.min(3000, seconds * 600);
  const rounds = [] as { lumen: number; gs: number }[];
  let lumenShards = 0, gsShards = 0;
  for (let round = 0; round < 3; round++) {
    const l = timeFor(ms, () => {
      const r = tx.sendFrame(au, AU, frame);
      lumenShards = r.dataShards + r.parityShards;
      return AU;
    });
    emptySink();
    const g = timeFor(ms, () => {
      const r = gsTx.sendFrame(au, AU, { captureNs: 0n, rtpTimestamp: 0, kind: "p" });
      gsShards = r.shards;
      return AU;
    });
    emptySink();
    rounds.push({ lumen: l.gbps, gs: g.gbps });
  }
  const bestL = Math.max(...rounds.map((r) => r.lumen)), bestG = Math.max(...rounds.map((r) => r.gs));
  // sender + receiver + reassembly on one thread
  const rx = LumenReceiver.create(n.lumen, keys, { shardBytes: 1344, maxFrameBytes: 1 << 20, slots: 4, readyFrames: 4 });
  const got = new Uint8Array(1 << 20);
  rx.setGro(sink, true); // as the reference client runs
  let complete = 0, sentFrames = 0;
  const e2e = timeFor(ms, () => {
    tx.sendFrame(au, AU, frame);
    sentFrames++;
    while (rx.recv(sink, 0) > 0) {}
    while (rx.nextFrame(got)) complete++;
    return AU;
  });
  rx.setGro(sink, false);
  const st = rx.stats();
  // the receiver alone: a socket buffer full of frames, then drained and reassembled, timed
  const rxOnly = LumenReceiver.create(n.lumen, keys, { shardBytes: 1344, maxFrameBytes: 1 << 20, slots: 8, readyFrames: 16 });
  const recvRounds: number[] = [], groRounds: number[] = [];
  let recvFrames = 0;
  for (let round = 0; round < 16; round++) {
    // alternate: datagram by datagram, then with UDP GRO (whole GSO buffers per read)
    const gro = round % 2 === 1;
    rxOnly.setGro(sink, gro);
    emptySink();
    const batch = 16; // 16 × 236 datagrams of 1,404 bytes ≈ 5 MB: within what the receive buffer holds
    for (let i = 0; i < batch; i++) tx.sendFrame(au, AU, frame);
    let got2 = 0;
    const r0 = performance.now();
    while (rxOnly.recv(sink, 0, 256) > 0) while (rxOnly.nextFrame(got)) got2++;
    while (rxOnly.nextFrame(got)) got2++;
    (gro ? groRounds : recvRounds).push((got2 * AU * 8) / ((performance.now() - r0) / 1000) / 1e9);
    recvFrames += got2;
  }
  rxOnly.setGro(sink, false);
  const recvGbps = Math.max(...recvRounds), groGbps = Math.max(...groRounds);
  rxOnly.close();
  // sender on the pump's thread (paced by 1 ns: always queued to it), receiver here
  const rx2 = LumenReceiver.create(n.lumen, keys, { shardBytes: 1344, maxFrameBytes: 1 << 20, slots: 8, readyFrames: 16 });
  rx2.setGro(sink, true);
  while (rx2.recv(sink, 0) > 0) {}
  const pump = LumenPump.start(n.lumen, tx, { slots: 4, auCap: AU });
  let piped = 0, pipedSent = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    const queued = pump.stats().pending >= 3;
    if (!queued && pump.submit(au, AU, { ...frame, paceNs: 1 }) !== null) pipedSent++;
    // with the pump's queue full, wait in poll (up to 1 ms) rather than spin against its thread
    if (rx2.recv(sink, queued ? 1 : 0, 256) > 0) while (rx2.recv(sink, 0, 256) > 0) while (rx2.nextFrame(got)) piped++;
    while (rx2.nextFrame(got)) piped++;
  }
  const pipedGbps = (piped * AU * 8) / ((performance.now() - t0) / 1000) / 1e9;
  pump.close();
  const st2 = rx2.stats();
  rx2.close();
  console.log(JSON.stringify({
    case: "goodput", auBytes: AU, parityPct: 20, lumenShardsPerFrame: lumenShards, gamestreamShardsPerFrame: gsShards,
    lumenSendGbps: r2(bestL), gamestreamSendGbps: r2(bestG), ratio: r2(bestL / bestG),
    lumenEndToEndGbps: r2(e2e.gbps), endToEndVsGamestreamSend: r2(e2e.gbps / bestG), framesComplete: complete, framesSent: sentFrames, badAuth: st.badAuth, framesLost: st.framesLost,
    lumenReceiveGbps: r2(recvGbps), receiveVsGamestreamSend: r2(recvGbps / bestG), lumenReceiveGroGbps: r2(groGbps), receiveGroVsGamestreamSend: r2(groGbps / bestG), receiveFrames: recvFrames, receiveFramesSent: 16 * 16,
    lumenPipelinedGbps: r2(pipedGbps), pipelinedVsGamestreamSend: r2(pipedGbps / bestG), pipelinedFramesComplete: piped, pipelinedFramesSent: pipedSent, pipelinedFramesLost: st2.framesLost,
    loadAvg1m: r2(loadavg()[0]!),
  }));
  tx.close();
  gsTx.close();
  rx.close();
  sink.close();
  out.close();
}
