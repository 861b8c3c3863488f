/**
 * Runs inside the test guest (the compiled agent with BUN_BE_BUN=1): plays a
 * rumble effect on an event node the way a game does — EVIOCSFF upload, an
 * EV_FF play, a stop, EVIOCRMFF erase.
 *   ff-play.ts /dev/input/eventN strong weak playMs
 */
import { closeSync, openSync, writeSync, constants as fsc } from "node:fs";
import { dlopen, FFIType } from "bun:ffi";

const [device, strong, weak, playMs] = process.argv.slice(2);
if (!device || !strong || !weak || !playMs) throw new Error("usage: ff-play.ts DEVICE STRONG WEAK PLAY_MS");
const libc = dlopen("libc.so.6", {
  ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
});
const EVIOCSFF = ((1 << 30) | (48 << 16) | (0x45 << 8) | 0x80) >>> 0;
const EVIOCRMFF = ((1 << 30) | (4 << 16) | (0x45 << 8) | 0x81) >>> 0;
const fd = openSync(device, fsc.O_RDWR);
const effect = Buffer.alloc(48);
effect.writeUInt16LE(0x50, 0); // FF_RUMBLE
effect.writeInt16LE(-1, 2); // new effect
effect.writeUInt16LE(5000, 10); // replay.length
effect.writeUInt16LE(Number(strong), 16);
effect.writeUInt16LE(Number(weak), 18);
if (libc.symbols.ioctl(fd, BigInt(EVIOCSFF), effect) < 0) throw new Error("EVIOCSFF failed");
const id = effect.readInt16LE(2);
const ev = (value: number) => {
  const b = Buffer.alloc(24);
  b.writeUInt16LE(0x15, 16); // EV_FF
  b.writeUInt16LE(id, 18);
  b.writeInt32LE(value, 20);
  writeSync(fd, b);
};
ev(1);
await Bun.sleep(Number(playMs));
ev(0);
const idBuf = Buffer.alloc(4);
idBuf.writeInt32LE(id, 0);
// EVIOCRMFF takes the id by value.
const rm = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.i64], returns: FFIType.i32 } });
if (rm.symbols.ioctl(fd, BigInt(EVIOCRMFF), id) < 0) throw new Error("EVIOCRMFF failed");
closeSync(fd);
console.log(`played effect ${id}`);
