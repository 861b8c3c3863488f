/** ffi/stream.ts: UDP sockets and the video sender's argument checks, on real loopback sockets. */
import { afterAll, describe, expect, test } from "bun:test";
import { NativeLibrary } from "../../ffi/native.ts";
import { StreamNative, UdpSocket, VideoSender } from "../../ffi/stream.ts";

const native = new StreamNative(NativeLibrary.load().path);
afterAll(() => native.close());

describe("ffi/stream", () => {
  test("UDP send/recv on IPv4 and IPv6 loopback; recv returns null when nothing is queued", async () => {
    for (const [host, family] of [["127.0.0.1", 4], ["::1", 6]] as const) {
      const a = UdpSocket.open(native, host, 0);
      const b = UdpSocket.open(native, host, 0);
      expect(a.port).toBeGreaterThan(0);
      const buf = new Uint8Array(64);
      expect(b.recv(buf)).toBeNull();
      a.send(new Uint8Array([1, 2, 3]), { family, address: host, port: b.port });
      let got = null;
      for (let i = 0; i < 100 && !got; i++) {
        got = b.recv(buf);
        if (!got) await Bun.sleep(2);
      }
      expect(got?.length).toBe(3);
      expect(got?.from.port).toBe(a.port);
      expect(got?.from.family).toBe(family);
      a.close();
      b.close();
      expect(() => b.recv(buf)).toThrow("closed");
    }
  });

  test("bad socket and sender arguments are refused with a clear error, nothing is sent", () => {
    expect(() => UdpSocket.open(native, "not an address", 0)).toThrow();
    const s = UdpSocket.open(native, "127.0.0.1", 0);
    const r = UdpSocket.open(native, "127.0.0.1", 0);
    expect(() => VideoSender.create(native, s, { packetSize: 100, fecPercent: 20, minFec: 2, maxFrameBytes: 1000 })).toThrow("EINVAL");
    expect(() => VideoSender.create(native, s, { packetSize: 1024, fecPercent: 256, minFec: 2, maxFrameBytes: 1000 })).toThrow("EINVAL");
    expect(() => VideoSender.create(native, s, { packetSize: 1024, fecPercent: 20, minFec: 2, maxFrameBytes: 1000, key: new Uint8Array(8) })).toThrow("16 bytes");
    const v = VideoSender.create(native, s, { packetSize: 1024, fecPercent: 20, minFec: 2, maxFrameBytes: 1000 });
    const au = new Uint8Array(2000);
    const frame = { captureNs: 0n, rtpTimestamp: 0, kind: "idr" as const };
    expect(() => v.sendFrame(au, 10, frame)).toThrow("EINVAL"); // no peer learned yet
    expect(() => v.setPeer({ family: 4, address: "300.1.1.1", port: 1 })).toThrow("IPv4");
    expect(() => v.setPeer({ family: 6, address: "::g", port: 1 })).toThrow("IPv6");
    expect(() => v.setPeer({ family: 4, address: "127.0.0.1", port: 0 })).toThrow("port");
    v.setPeer({ family: 4, address: "127.0.0.1", port: r.port });
    expect(() => v.sendFrame(au, 2000, frame)).toThrow("ERANGE"); // over maxFrameBytes
    expect(() => v.sendFrame(au, 3000, frame)).toThrow(RangeError); // past its buffer
    const res = v.sendFrame(au, 10, frame);
    expect(res.frameIndex).toBe(1); // refused frames consumed no index
    expect(res.dataShards).toBe(1);
    expect(res.parityShards).toBe(2); // raised to minRequiredFecPackets
    expect(res.fecPercent).toBe(200);
    v.close();
    expect(() => v.sendFrame(au, 10, frame)).toThrow("closed");
    s.close();
    r.close();
  });
});
