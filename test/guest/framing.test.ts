import { describe, expect, test } from "bun:test";
import { encodeFrame, ETX, FrameDecoder, FrameTooLargeError, STX, type FrameDrop } from "../../src/guest/framing.ts";

function decoder(max = 1024) {
  const frames: Record<string, unknown>[] = [];
  const drops: FrameDrop[] = [];
  const d = new FrameDecoder({ maxFrameBytes: max, onFrame: (f) => frames.push(f), onDrop: (x) => drops.push(x) });
  return { d, frames, drops };
}
const bytes = (s: string) => new TextEncoder().encode(s);
const frame = (s: string) => new Uint8Array([STX, ...bytes(s), ETX]);

describe("encodeFrame", () => {
  test("wraps JSON between STX and ETX and escapes control bytes", () => {
    const f = encodeFrame({ type: "clipboard_set", text: "a\u0002b\u0003c" });
    expect(f[0]).toBe(STX);
    expect(f[f.length - 1]).toBe(ETX);
    const inner = f.subarray(1, -1);
    expect(inner.includes(STX)).toBe(false);
    expect(inner.includes(ETX)).toBe(false);
    const { d, frames } = decoder();
    d.push(f);
    expect(frames).toEqual([{ type: "clipboard_set", text: "a\u0002b\u0003c" }]);
  });

  test("refuses a message over the bound", () => {
    expect(() => encodeFrame({ text: "x".repeat(2000) }, 1024)).toThrow(FrameTooLargeError);
  });

  test("round-trips multi-byte UTF-8 split at every byte", () => {
    const msg = { text: "héllo — 你好 🎉" };
    const f = encodeFrame(msg);
    const { d, frames, drops } = decoder();
    for (const b of f) d.push(new Uint8Array([b]));
    expect(frames).toEqual([msg]);
    expect(drops).toEqual([]);
  });
});

describe("FrameDecoder", () => {
  test("several frames in one chunk, with stray bytes between", () => {
    const { d, frames, drops } = decoder();
    d.push(new Uint8Array([...frame('{"a":1}'), ...bytes("junk"), ...frame('{"b":2}')]));
    expect(frames).toEqual([{ a: 1 }, { b: 2 }]);
    expect(drops).toEqual([{ reason: "stray_bytes", bytes: 4, detail: "bytes outside a frame" }]);
  });

  test("nested STX restarts the frame; the inner frame survives", () => {
    const { d, frames, drops } = decoder();
    d.push(new Uint8Array([STX, ...bytes('{"lost":'), ...frame('{"ok":true}')]));
    expect(frames).toEqual([{ ok: true }]);
    expect(drops[0]!.reason).toBe("nested_stx");
    expect(drops[0]!.bytes).toBe(8);
  });

  test("missing ETX: the frame is reported when the stream ends", () => {
    const { d, frames, drops } = decoder();
    d.push(new Uint8Array([STX, ...bytes('{"a":1}')]));
    expect(frames).toEqual([]);
    d.end();
    expect(drops.map((x) => x.reason)).toEqual(["stray_bytes"]);
  });

  test("invalid UTF-8, invalid JSON and non-objects are dropped; the next frame still decodes", () => {
    const { d, frames, drops } = decoder();
    d.push(new Uint8Array([STX, 0xff, 0xfe, 0x7b, ETX]));
    d.push(frame("{not json"));
    d.push(frame("[1,2]"));
    d.push(frame("42"));
    d.push(frame('{"fine":1}'));
    expect(drops.map((x) => x.reason)).toEqual(["invalid_utf8", "invalid_json", "not_an_object", "not_an_object"]);
    expect(frames).toEqual([{ fine: 1 }]);
  });

  test("oversized frames are skipped without buffering; memory stays bounded", () => {
    const { d, frames, drops } = decoder(1024);
    d.push(new Uint8Array([STX]));
    const chunk = new Uint8Array(64 * 1024).fill(0x41);
    let maxBuffered = 0;
    for (let i = 0; i < 1600; i++) {
      d.push(chunk); // 100 MiB without ETX
      maxBuffered = Math.max(maxBuffered, d.buffered);
    }
    expect(maxBuffered).toBeLessThanOrEqual(1024);
    d.push(new Uint8Array([ETX]));
    d.push(frame('{"after":1}'));
    expect(drops).toHaveLength(1);
    expect(drops[0]!.reason).toBe("oversized");
    expect(drops[0]!.bytes).toBe(1600 * 64 * 1024 + 2);
    expect(frames).toEqual([{ after: 1 }]);
  });

  test("a frame of exactly the bound is accepted, one byte more is not", () => {
    const max = 100;
    const { d, frames, drops } = decoder(max);
    const exact = '{"t":"' + "x".repeat(max - 8) + '"}';
    expect(exact.length).toBe(max);
    d.push(frame(exact));
    d.push(frame('{"t":"' + "x".repeat(max - 7) + '"}'));
    expect(frames).toHaveLength(1);
    expect(drops.map((x) => x.reason)).toEqual(["oversized"]);
  });

  test("the caller's buffer may be reused after push", () => {
    const { d, frames } = decoder();
    const buf = new Uint8Array([STX, ...bytes('{"a":')]);
    d.push(buf);
    buf.fill(0x20);
    d.push(new Uint8Array([...bytes("7}"), ETX]));
    expect(frames).toEqual([{ a: 7 }]);
  });
});
