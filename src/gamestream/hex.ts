/** Strict hex decoding for protocol parameters: even length, hex digits only, bounded. */
export class HexError extends Error {}

export function decodeHex(text: string, opts: { bytes?: number; maxBytes?: number; name: string }): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new HexError(`${opts.name}: not a hex string`);
  const n = text.length / 2;
  if (opts.bytes !== undefined && n !== opts.bytes) throw new HexError(`${opts.name}: expected ${opts.bytes} bytes, got ${n}`);
  if (opts.maxBytes !== undefined && n > opts.maxBytes) throw new HexError(`${opts.name}: longer than ${opts.maxBytes} bytes`);
  return Uint8Array.from(Buffer.from(text, "hex"));
}

export const encodeHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Constant-time comparison of two byte strings. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
