/**
 * Box art for /appasset: the app's own PNG when its path holds one (bounded
 * size, PNG signature checked), otherwise a default image drawn here once.
 */
import { readFileSync, statSync } from "node:fs";
import { deflateSync } from "node:zlib";
import { concatBytes } from "./hex.ts";

export const MAX_BOXART_BYTES = 8 * 1024 * 1024;
const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Encodes RGB pixels (3 bytes per pixel, row-major) as a PNG. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Uint8Array {
  if (rgb.length !== width * height * 3) throw new Error("pixel buffer size does not match the image size");
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, no filter method, no interlace
  const raw = new Uint8Array(height * (1 + width * 3));
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (1 + width * 3) + 1);
  return concatBytes(PNG_SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0)));
}

let defaultArt: Uint8Array | null = null;

/** 300×400 (the 3:4 of client tiles): a dark blue gradient with a lighter ring, the NeuronOS mark. */
export function defaultBoxArt(): Uint8Array {
  if (defaultArt) return defaultArt;
  const w = 300;
  const h = 400;
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = Math.hypot(x - w / 2, y - h / 2);
      const ring = Math.abs(d - 70) < 6 || d < 14 ? 1 : 0;
      const i = (y * w + x) * 3;
      px[i] = ring ? 120 : 16 + (y * 24) / h;
      px[i + 1] = ring ? 200 : 24 + (y * 40) / h;
      px[i + 2] = ring ? 255 : 48 + (y * 80) / h;
    }
  }
  defaultArt = encodePng(w, h, px);
  return defaultArt;
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length > PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/** The app's PNG, or the default image when the path is unset, unreadable, too large or not a PNG. */
export function loadBoxArt(path: string | null): { png: Uint8Array; source: "app" | "default" } {
  if (path) {
    try {
      const st = statSync(path);
      if (st.isFile() && st.size <= MAX_BOXART_BYTES) {
        const bytes = new Uint8Array(readFileSync(path));
        if (isPng(bytes)) return { png: bytes, source: "app" };
      }
    } catch {
      /* fall back to the default */
    }
  }
  return { png: defaultBoxArt(), source: "default" };
}
