/**
 * Moonlight's frame-start rules (moonlight-depacketizer.ts) over real access units: the native
 * capture → encode pipeline (libx264 / libx265 through libavcodec) fills its ring, the native
 * sender packetizes every unit at every packet size from 256 to 1392 bytes onto a real UDP
 * socket on 127.0.0.1, and the model of the client's depacketizer must see the first packet
 * of every IDR as an IDR start (its slice included), every P frame as a P frame, and hand
 * the decoder exactly the access unit.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CaptureNative, CapturePipeline, SyntheticProducer, type CodecName } from "../../ffi/capture.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { StreamNative, UdpSocket, VideoSender } from "../../ffi/stream.ts";
import { shmPath } from "../../src/vm/shm.ts";
import { tempDir } from "../helpers/env.ts";
import { MoonlightDepacketizer, parseShard, trimZeros, type DepacketizerCodec } from "./moonlight-depacketizer.ts";

const nativePath = NativeLibrary.load().path;
const capture = new CaptureNative(nativePath);
const stream = new StreamNative(nativePath);
const dir = tempDir("neuron-frame-start-");
afterAll(() => {
  capture.close();
  stream.close();
  dir.cleanup();
});

const W = 1280, H = 720;
const STOCK = [512, 992, 1024, 1360, 1392];
const SIZES = [...new Set([...Array.from({ length: 72 }, (_, i) => 256 + 16 * i), ...STOCK])].sort((a, b) => a - b);

interface Unit {
  data: Uint8Array;
  idr: boolean;
}

/** Access units from the native pipeline's ring: the first IDR, P frames, an IDR on request, P frames. */
async function pipelineUnits(codec: CodecName, count: number): Promise<Unit[]> {
  const path = shmPath(dir.path, `frame-start-${codec}`);
  const producer = SyntheticProducer.start(capture, path, { width: W, height: H, fps: 60 });
  const p = CapturePipeline.start(capture, path, { codec, fps: 30, bitrateKbps: 20000, threads: 2, ringSlots: 16 });
  const buf = new Uint8Array(W * H * 2);
  const units: Unit[] = [];
  try {
    const end = Date.now() + 30_000;
    while (units.length < count && Date.now() < end) {
      const info = p.poll(buf);
      if (!info) {
        await Bun.sleep(2);
        continue;
      }
      units.push({ data: buf.slice(0, info.size), idr: info.idr });
      if (units.length === 4) p.requestIdr();
    }
  } finally {
    p.stop();
    producer.stop();
  }
  return units;
}

/** Sends the units at one packet size over loopback; returns every datagram in arrival order. */
async function packetize(units: Unit[], packetSize: number): Promise<Uint8Array[]> {
  const tx = UdpSocket.open(stream, "127.0.0.1", 0);
  const rx = UdpSocket.open(stream, "127.0.0.1", 0, { rcvbuf: 4 << 20 });
  const sender = VideoSender.create(stream, tx, { packetSize, fecPercent: 20, minFec: 2, maxFrameBytes: 1 << 21 });
  const got: Uint8Array[] = [];
  const buf = new Uint8Array(packetSize + 64);
  try {
    sender.setPeer({ family: 4, address: "127.0.0.1", port: rx.port });
    for (const u of units) {
      const r = sender.sendFrame(u.data, u.data.length, { captureNs: 0n, rtpTimestamp: 0, kind: u.idr ? "idr" : "p" });
      expect(r.sendErrors).toBe(0);
      const want = got.length + r.shards;
      const end = Date.now() + 5000;
      while (got.length < want && Date.now() < end) {
        const m = rx.recv(buf);
        if (m) got.push(buf.slice(0, m.length));
        else await Bun.sleep(1);
      }
      expect(got.length).toBe(want);
    }
  } finally {
    sender.close();
    tx.close();
    rx.close();
  }
  return got;
}

/** The data shards of each FEC block, in order (what the client's FEC queue passes on). */
function dataShards(datagrams: Uint8Array[]): Uint8Array[] {
  return datagrams.filter((d) => {
    const fecInfo = (d[28]! | (d[29]! << 8) | (d[30]! << 16) | (d[31]! << 24)) >>> 0;
    return ((fecInfo >>> 12) & 0x3ff) < fecInfo >>> 22;
  });
}

/** An SEI NAL of n bytes (user data unregistered, as an encoder's info string), start code included. */
function seiNal(codec: DepacketizerCodec, n: number): Uint8Array {
  const head = codec === "hevc" ? [0, 0, 0, 1, 0x4e, 0x01, 5] : [0, 0, 0, 1, 0x06, 5];
  const body = n - head.length - 3; // payload size byte(s) and the trailing bits byte
  const sei = new Uint8Array(n);
  sei.set(head);
  sei[head.length] = 255;
  sei[head.length + 1] = body - 255;
  sei.fill(0x41, head.length + 2, n - 1);
  sei[n - 1] = 0x80;
  return sei;
}

const nalTypeAt = (codec: DepacketizerCodec, b: Uint8Array, o: number) =>
  codec === "hevc" ? (b[o]! >> 1) & 0x3f : b[o]! & 0x1f;

/** Offset of the first IDR slice's NAL header byte. */
function sliceAt(codec: DepacketizerCodec, au: Uint8Array): number {
  for (let i = 0; i + 4 < au.length; i++) {
    if (au[i] !== 0 || au[i + 1] !== 0 || au[i + 2] !== 1) continue;
    const t = nalTypeAt(codec, au, i + 3);
    if (codec === "hevc" ? t >= 16 && t <= 21 : t === 5) return i + 3;
  }
  throw new Error("no IDR slice");
}

/** Puts an SEI in front of an IDR's slice, as x265 with its encoder info did (x264: the first IDR). */
function withSeiBeforeSlice(codec: DepacketizerCodec, au: Uint8Array, seiBytes: number): Uint8Array {
  const i = sliceAt(codec, au) - 3;
  const at = au[i - 1] === 0 ? i - 1 : i;
  return Buffer.concat([au.subarray(0, at), seiNal(codec, seiBytes), au.subarray(at)]);
}

describe.each(["h264", "hevc"] as const)("Moonlight frame start, %s", (codec) => {
  let units: Unit[] = [];
  beforeAll(async () => {
    units = await pipelineUnits(codec, 10);
  }, 60_000);

  test("the ring's access units: IDRs start with the parameter sets, no SEI or AUD anywhere", () => {
    expect(units.length).toBe(10);
    expect(units[0]!.idr).toBe(true);
    expect(units.filter((u) => u.idr).length).toBeGreaterThanOrEqual(2);
    const ps = codec === "hevc" ? [32, 33, 34] : [7, 8];
    for (const u of units) {
      const types: number[] = [];
      for (let i = 0; i + 3 < u.data.length; i++)
        if (u.data[i] === 0 && u.data[i + 1] === 0 && u.data[i + 2] === 1) types.push(nalTypeAt(codec, u.data, i + 3));
      expect(Array.from(u.data.subarray(0, 4))).toEqual([0, 0, 0, 1]);
      expect(types.filter((t) => (codec === "hevc" ? [35, 39, 40] : [6, 9]).includes(t))).toEqual([]);
      if (u.idr) {
        expect(types.slice(0, ps.length)).toEqual(ps);
        expect(types.slice(ps.length).every((t) => (codec === "hevc" ? t === 19 || t === 20 : t === 5))).toBe(true);
      } else {
        expect(types.every((t) => t === 1)).toBe(true);
      }
    }
    const idr = units.find((u) => u.idr)!;
    console.log(`${codec}: ${units.length} units from the pipeline, IDR ${idr.data.length} B, P ${units.filter((u) => !u.idr).map((u) => u.data.length).join("/")} B`);
  });

  test(`every packet size from 256 to 1392 (${SIZES.length} sizes): IDR first packets are IDR starts, P frames are P`, async () => {
    let packets = 0, frames = 0, multiBlock = 0;
    let slackMin = Infinity;
    for (const size of SIZES) {
      const datagrams = await packetize(units, size);
      const d = new MoonlightDepacketizer(codec);
      for (const s of dataShards(datagrams)) d.push(parseShard(s));
      packets += datagrams.length;
      expect({ size, asserts: d.asserts, log: d.log }).toEqual({ size, asserts: [], log: [] });
      expect(d.units.length).toBe(units.length);
      d.units.forEach((du, i) => {
        const u = units[i]!;
        expect({ size, i, type: du.type, header: du.headerType }).toEqual({ size, i, type: u.idr ? "idr" : "p", header: u.idr ? 2 : 1 });
        expect(Buffer.compare(Buffer.from(trimZeros(du.data)), Buffer.from(u.data))).toBe(0);
      });
      for (const fp of d.firstPackets) {
        expect(fp.contentBytes).toBe(size - 16 - 8);
        expect(fp.decidingNalAt).toBe(0);
      }
      // room left in the first packet after the parameter sets and the slice's NAL header
      for (const u of units.filter((x) => x.idr)) slackMin = Math.min(slackMin, size - 24 - (sliceAt(codec, u.data) + 1));
      frames += d.units.length;
      const blocks = datagrams.filter((g) => ((g[27]! >> 6) & 3) > 0).length;
      if (blocks) multiBlock++;
    }
    expect(frames).toBe(SIZES.length * units.length);
    expect(multiBlock).toBeGreaterThan(0); // the large IDRs span several FEC blocks at small sizes
    console.log(`${codec}: ${SIZES.length} packet sizes × ${units.length} frames = ${frames} decode units from ${packets} datagrams; sizes with multi-block frames: ${multiBlock}; least first-packet room after the slice header ${slackMin} B`);
  }, 120_000);

  test("the model reproduces the fault: a 2.4 KB SEI in front of the slice makes 992/1360 wait for an IDR, 4096 not", async () => {
    const bad = units.map((u) => (u.idr ? { idr: true, data: withSeiBeforeSlice(codec, u.data, 2408) } : u));
    for (const size of [992, 1360, 4096]) {
      const d = new MoonlightDepacketizer(codec);
      for (const s of dataShards(await packetize(bad, size))) d.push(parseShard(s));
      if (size === 4096) {
        expect(d.log).toEqual([]);
        expect(d.units.map((u) => u.type)).toEqual(units.map((u) => (u.idr ? "idr" : "p")));
        // the client dropped the SEI unread: what it decodes is the unit without it
        expect(Buffer.compare(Buffer.from(trimZeros(d.units[0]!.data)), Buffer.from(units[0]!.data))).toBe(0);
      } else {
        expect(d.units.length).toBe(0);
        expect(d.log.filter((l) => l === "Waiting for IDR frame").length).toBe(units.length);
        expect(d.firstPackets.filter((f) => f.start === "idr-without-slice").length).toBe(units.filter((u) => u.idr).length);
      }
    }
  }, 60_000);
});
