/** ffi/enet.ts edge cases: bad addresses, a port in use, oversize sends, use after close. */
import { describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { EnetHost, enetAvailable, MAX_PACKET_BYTES } from "../../ffi/enet.ts";

const skip = !enetAvailable();
if (skip) console.warn("skipping ENet binding tests: libenet.so.7 is not installed");

describe.skipIf(skip)("ENet binding", () => {
  test("a non-IPv4 bind address is refused; a port in use is refused", async () => {
    const probe = createSocket("udp4");
    await new Promise<void>((res) => probe.bind(0, "127.0.0.1", () => res()));
    const port = probe.address().port;
    await new Promise<void>((res) => probe.close(() => res()));
    expect(() => new EnetHost({ bind: { host: "not an address", port: 0 }, peers: 1, channels: 1 })).toThrow(/IPv4/);
    const a = new EnetHost({ bind: { host: "127.0.0.1", port: 0 }, peers: 1, channels: 1 });
    const b = new EnetHost({ bind: { host: "127.0.0.1", port }, peers: 1, channels: 1 });
    expect(() => new EnetHost({ bind: { host: "127.0.0.1", port }, peers: 1, channels: 1 })).toThrow(/cannot bind/);
    a.close();
    b.close();
  });

  test("empty and oversize packets are not sent; a closed host refuses service", () => {
    const h = new EnetHost({ peers: 1, channels: 2 });
    const peer = h.connect("127.0.0.1", 9, 2, 0);
    expect(h.send(peer, 0, new Uint8Array(0))).toBe(false);
    expect(h.send(peer, 0, new Uint8Array(MAX_PACKET_BYTES + 1))).toBe(false);
    expect(h.service(0)).toBeNull();
    h.close();
    h.close();
    expect(() => h.service(0)).toThrow(/closed/);
  });
});
