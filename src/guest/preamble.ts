/**
 * The session preamble and its answer, which frame every host session on the
 * agent port before TLS starts.
 *
 * A virtio-serial port has no connection boundaries in either direction:
 * - host → guest: bytes of an earlier, broken session (or the part of a
 *   ClientHello that reached the port before the agent opened it) may still
 *   be in the pipe;
 * - guest → host: QEMU keeps what the guest wrote while no host was connected
 *   (or after the host left) and hands it to the next host connection.
 * So the host opens every session with `NEURONOS-AGENT/1 <nonce>\r\n` (a fresh
 * random nonce), the agent discards everything before it and answers
 * `NEURONOS-AGENT/1 OK <nonce>\r\n`, and the host discards everything before
 * the answer carrying its own nonce. Each side's TLS handshake then starts on
 * a clean byte boundary, whatever an earlier session left behind.
 */
import { randomBytes } from "node:crypto";
import { Duplex } from "node:stream";

/** Start of every host preamble (and of the agent's answer). */
export const PREAMBLE_MAGIC = Buffer.from("NEURONOS-AGENT/1 ", "ascii");
const NONCE_HEX = 32;
const CRLF = Buffer.from("\r\n", "ascii");

export function newNonce(): string {
  return randomBytes(NONCE_HEX / 2).toString("hex");
}

/** What the host writes first on every connection. */
export function hostPreamble(nonce: string): Buffer {
  return Buffer.concat([PREAMBLE_MAGIC, Buffer.from(nonce, "ascii"), CRLF]);
}

/** What the agent answers, before its side of the TLS handshake. */
export function guestAnswer(nonce: string): Buffer {
  return Buffer.concat([PREAMBLE_MAGIC, Buffer.from(`OK ${nonce}`, "ascii"), CRLF]);
}

/**
 * Finds every occurrence of a needle in a byte stream fed chunk by chunk,
 * including occurrences split across chunks. Holds at most needle.length - 1
 * bytes of earlier chunks.
 */
export class NeedleScanner {
  private tail: Buffer = Buffer.alloc(0);
  constructor(private readonly needle: Buffer) {}

  /** Offsets in `chunk` where an occurrence starts (negative: it began in earlier chunks). */
  scan(chunk: Buffer): number[] {
    const len = this.needle.length;
    const held = this.tail.length;
    if (chunk.length < len - 1) return this.scanJoined(chunk);
    // Occurrences that began in the held bytes end within the chunk's first len - 1 bytes: only that edge
    // is joined, so a large chunk is searched in place, never copied.
    const found: number[] = [];
    let from = 0;
    if (held) {
      const edge = Buffer.concat([this.tail, chunk.subarray(0, len - 1)]);
      for (let at = edge.indexOf(this.needle); at >= 0 && at < held; at = edge.indexOf(this.needle, at + len)) {
        found.push(at - held);
        from = at - held + len;
      }
    }
    for (let at = chunk.indexOf(this.needle, from); at >= 0; at = chunk.indexOf(this.needle, at + len)) {
      found.push(at);
      from = at + len;
    }
    this.tail = Buffer.from(chunk.subarray(Math.max(from, chunk.length - (len - 1))));
    return found;
  }

  /** A chunk shorter than the held window: join it to the held bytes and search both. */
  private scanJoined(chunk: Buffer): number[] {
    const held = this.tail.length;
    const buf = Buffer.concat([this.tail, chunk]);
    const found: number[] = [];
    let from = 0;
    for (let at = buf.indexOf(this.needle); at >= 0; at = buf.indexOf(this.needle, at + this.needle.length)) {
      found.push(at - held);
      from = at + this.needle.length;
    }
    this.tail = Buffer.from(buf.subarray(Math.max(from, buf.length - (this.needle.length - 1))));
    return found;
  }

  reset(): void {
    this.tail = Buffer.alloc(0);
  }
}

const HEX = /^[0-9a-f]{32}$/;

/**
 * Reads `stream` until a complete preamble line shows up: for the agent, any
 * host preamble (`NEURONOS-AGENT/1 <nonce>\r\n`); for the host (`answerFor`),
 * the answer with its own nonce. Everything before it is discarded (reported
 * through onDiscard); once more than `maxDiscard` bytes were discarded it gives
 * up. Resolves with the nonce and a stream positioned just after the line
 * (writes go to the original stream), or null when the stream ends or the
 * bound is hit.
 */
export function readUntilPreamble(
  stream: Duplex,
  opts: { answerFor?: string; maxDiscard?: number; onDiscard?: (bytes: number) => void } = {},
): Promise<{ nonce: string; stream: Duplex } | null> {
  const prefix = opts.answerFor === undefined ? PREAMBLE_MAGIC : Buffer.concat([PREAMBLE_MAGIC, Buffer.from("OK ", "ascii")]);
  const maxDiscard = opts.maxDiscard ?? Number.POSITIVE_INFINITY;
  return new Promise((resolve) => {
    let pending: Buffer = Buffer.alloc(0);
    let discarded = 0;
    const cleanup = () => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onEnd);
    };
    const finish = (result: { nonce: string; stream: Duplex } | null) => {
      cleanup();
      if (discarded) opts.onDiscard?.(discarded);
      resolve(result);
    };
    const onEnd = () => {
      discarded += pending.length;
      finish(null);
    };
    const onData = (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        const at = pending.indexOf(prefix);
        if (at < 0) {
          const keep = Math.min(pending.length, prefix.length - 1);
          discarded += pending.length - keep;
          pending = Buffer.from(pending.subarray(pending.length - keep));
          break;
        }
        const lineEnd = at + prefix.length + NONCE_HEX + CRLF.length;
        if (pending.length < lineEnd) {
          discarded += at;
          pending = Buffer.from(pending.subarray(at));
          break;
        }
        const nonce = pending.subarray(at + prefix.length, at + prefix.length + NONCE_HEX).toString("latin1");
        const valid = HEX.test(nonce) && pending.subarray(lineEnd - CRLF.length, lineEnd).equals(CRLF);
        if (valid && (opts.answerFor === undefined || nonce === opts.answerFor)) {
          discarded += at;
          stream.pause();
          finish({ nonce, stream: continuation(stream, Buffer.from(pending.subarray(lineEnd))) });
          return;
        }
        // Not ours (another session's answer, or a damaged line): skip past its prefix and keep looking.
        discarded += at + prefix.length;
        pending = Buffer.from(pending.subarray(at + prefix.length));
      }
      if (discarded > maxDiscard) finish(null);
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("close", onEnd);
  });
}

/** A duplex that first yields `rest`, then whatever `inner` reads; writes go to `inner`. */
function continuation(inner: Duplex, rest: Buffer): Duplex {
  const out = new Duplex({
    read() {
      inner.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      inner.write(chunk, cb);
    },
    final(cb) {
      inner.end();
      cb();
    },
    destroy(err, cb) {
      inner.destroy(err ?? undefined);
      cb(err);
    },
  });
  if (rest.length) out.push(rest);
  inner.on("data", (d: Buffer) => {
    if (!out.push(d)) inner.pause();
  });
  // End, never destroy, on the inner stream's end: data already pushed (a TLS alert) must still be read.
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    out.push(null);
  };
  inner.on("end", end);
  inner.on("close", end);
  inner.on("error", end);
  return out;
}
