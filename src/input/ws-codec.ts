/**
 * The input WebSocket's binary layout: one or more records per message, little-endian,
 * each record's size fixed by its type byte. Decoded into the API's InjectEvents (the
 * same events and checks as POST inject-input). Reserved bytes must be zero.
 *
 *   0x01 key      8  [1] flags bit0 down · [2..3] u16 usage · [4] page (0x01/0x07/0x0C)
 *   0x02 move     8  [2..3] i16 dx · [4..5] i16 dy
 *   0x03 abs      8  [2..3] u16 x · [4..5] u16 y (0..32767)
 *   0x04 button   8  [1] flags bit0 down · [2] button 1..5
 *   0x05 wheel    8  [2..3] i16 dy · [4..5] i16 dx (120 = one notch)
 *   0x06 release  8  (release everything this socket holds)
 *   0x10 gamepad 16  [1] pad · [2..5] u32 buttons · [6..13] i16 lx ly rx ry · [14] lt · [15] rt
 *   0x11 attach   8  [1] pad · [2] kind (0 xbox, 1 dualsense)
 *   0x12 detach   8  [1] pad
 *   0x13 motion  16  [1] pad · [2] sensor (0 accel, 1 gyro) · [4..15] f32 x y z
 *   0x20 touch   16  [1] phase (0 down 1 move 2 up 3 cancel) · [2] id · [4..5] x · [6..7] y · [8..9] pressure
 *   0x21 pen     16  [1] phase (0 hover 1 down 2 move 3 up) · [2] buttons · [3] flags bit0 eraser · [4..5] x · [6..7] y · [8..9] pressure
 */
import { z } from "zod";
import { InjectBatch, InjectEvent, MAX_BATCH_EVENTS } from "./model.ts";

export const WsRecord = {
  key: 0x01,
  move: 0x02,
  abs: 0x03,
  button: 0x04,
  wheel: 0x05,
  releaseAll: 0x06,
  gamepad: 0x10,
  gamepadAttach: 0x11,
  gamepadDetach: 0x12,
  gamepadMotion: 0x13,
  touch: 0x20,
  pen: 0x21,
} as const;

const SIZE: Record<number, number> = { 0x01: 8, 0x02: 8, 0x03: 8, 0x04: 8, 0x05: 8, 0x06: 8, 0x10: 16, 0x11: 8, 0x12: 8, 0x13: 16, 0x20: 16, 0x21: 16 };

export class WsDecodeError extends Error {
  constructor(
    message: string,
    readonly record: number,
  ) {
    super(message);
  }
}

const TOUCH = ["down", "move", "up", "cancel"] as const;
const PEN = ["hover", "down", "move", "up"] as const;

/** Decodes a binary message; throws WsDecodeError naming the first bad record. */
export function decodeBinary(bytes: Uint8Array): InjectEvent[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: InjectEvent[] = [];
  let at = 0;
  let n = 0;
  while (at < bytes.length) {
    const type = bytes[at]!;
    const size = SIZE[type];
    if (size === undefined) throw new WsDecodeError(`record ${n}: unknown type 0x${type.toString(16)}`, n);
    if (at + size > bytes.length) throw new WsDecodeError(`record ${n}: truncated (${bytes.length - at} of ${size} bytes)`, n);
    if (out.length >= MAX_BATCH_EVENTS) throw new WsDecodeError(`more than ${MAX_BATCH_EVENTS} records in one message`, n);
    const zero = (from: number) => {
      for (let i = from; i < size; i++) if (bytes[at + i] !== 0) throw new WsDecodeError(`record ${n}: reserved byte ${i} is not zero`, n);
    };
    const u8 = (o: number) => bytes[at + o]!;
    const u16 = (o: number) => v.getUint16(at + o, true);
    const s16 = (o: number) => v.getInt16(at + o, true);
    const f32 = (o: number) => v.getFloat32(at + o, true);
    const flag = (o: number) => {
      const f = u8(o);
      if (f > 1) throw new WsDecodeError(`record ${n}: unknown flag bits 0x${f.toString(16)}`, n);
      return f === 1;
    };
    let ev: unknown;
    switch (type) {
      case WsRecord.key:
        ev = { type: "key", down: flag(1), usage: u16(2), page: u8(4) };
        zero(5);
        break;
      case WsRecord.move:
        if (u8(1) !== 0) zero(1);
        ev = { type: "move", dx: s16(2), dy: s16(4) };
        zero(6);
        break;
      case WsRecord.abs:
        if (u8(1) !== 0) zero(1);
        ev = { type: "abs", x: u16(2), y: u16(4) };
        zero(6);
        break;
      case WsRecord.button:
        ev = { type: "button", down: flag(1), button: u8(2) };
        zero(3);
        break;
      case WsRecord.wheel:
        if (u8(1) !== 0) zero(1);
        ev = { type: "wheel", dy: s16(2), dx: s16(4) };
        zero(6);
        break;
      case WsRecord.releaseAll:
        zero(1);
        ev = { type: "releaseAll" };
        break;
      case WsRecord.gamepad:
        ev = { type: "gamepad", pad: u8(1), buttons: v.getUint32(at + 2, true), lx: s16(6), ly: s16(8), rx: s16(10), ry: s16(12), lt: u8(14), rt: u8(15) };
        break;
      case WsRecord.gamepadAttach: {
        const kind = u8(2);
        if (kind > 1) throw new WsDecodeError(`record ${n}: unknown gamepad kind ${kind}`, n);
        ev = { type: "gamepadAttach", pad: u8(1), kind: kind === 0 ? "xbox" : "dualsense" };
        zero(3);
        break;
      }
      case WsRecord.gamepadDetach:
        ev = { type: "gamepadDetach", pad: u8(1) };
        zero(2);
        break;
      case WsRecord.gamepadMotion: {
        const sensor = u8(2);
        if (sensor > 1 || u8(3) !== 0) throw new WsDecodeError(`record ${n}: bad sensor byte`, n);
        ev = { type: "gamepadMotion", pad: u8(1), sensor: sensor === 0 ? "accel" : "gyro", x: f32(4), y: f32(8), z: f32(12) };
        break;
      }
      case WsRecord.touch: {
        const phase = TOUCH[u8(1)];
        if (!phase || u8(3) !== 0) throw new WsDecodeError(`record ${n}: bad touch phase or reserved byte`, n);
        ev = { type: "touch", phase, id: u8(2), x: u16(4), y: u16(6), pressure: u16(8) / 65535 };
        zero(10);
        break;
      }
      case WsRecord.pen: {
        const phase = PEN[u8(1)];
        if (!phase) throw new WsDecodeError(`record ${n}: bad pen phase`, n);
        const flags = u8(3);
        if (flags > 1) throw new WsDecodeError(`record ${n}: unknown pen flags`, n);
        ev = { type: "pen", phase, buttons: u8(2), eraser: flags === 1, x: u16(4), y: u16(6), pressure: u16(8) / 65535 };
        zero(10);
        break;
      }
    }
    const parsed = InjectEvent.safeParse(ev);
    if (!parsed.success) throw new WsDecodeError(`record ${n}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "value"}: ${i.message}`).join("; ")}`, n);
    out.push(parsed.data);
    at += size;
    n++;
  }
  if (out.length === 0) throw new WsDecodeError("empty message", 0);
  return out;
}

/** Decodes a text message: `{"events":[...]}` or a bare array of events. */
export function decodeText(text: string): InjectEvent[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WsDecodeError("not JSON", 0);
  }
  const parsed = InjectBatch.safeParse(Array.isArray(value) ? { events: value } : value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const record = typeof issue.path[1] === "number" ? issue.path[1] : 0;
    throw new WsDecodeError(`${issue.path.join(".") || "message"}: ${issue.message}`, record);
  }
  return parsed.data.events;
}

/** Encoders for clients and tests (the inverse of decodeBinary). */
export const encodeRecord = {
  key: (usage: number, down: boolean, page = 7) => rec(8, (v) => (v.setUint8(1, down ? 1 : 0), v.setUint16(2, usage, true), v.setUint8(4, page)), WsRecord.key),
  move: (dx: number, dy: number) => rec(8, (v) => (v.setInt16(2, dx, true), v.setInt16(4, dy, true)), WsRecord.move),
  abs: (x: number, y: number) => rec(8, (v) => (v.setUint16(2, x, true), v.setUint16(4, y, true)), WsRecord.abs),
  button: (button: number, down: boolean) => rec(8, (v) => (v.setUint8(1, down ? 1 : 0), v.setUint8(2, button)), WsRecord.button),
  wheel: (dy: number, dx = 0) => rec(8, (v) => (v.setInt16(2, dy, true), v.setInt16(4, dx, true)), WsRecord.wheel),
  releaseAll: () => rec(8, () => {}, WsRecord.releaseAll),
};

function rec(size: number, fill: (v: DataView) => void, type: number): Uint8Array {
  const b = new Uint8Array(size);
  b[0] = type;
  fill(new DataView(b.buffer));
  return b;
}

export const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

export const WsErrorMessage = z.object({ type: z.literal("error"), code: z.string(), message: z.string(), record: z.number() });
