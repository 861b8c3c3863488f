/**
 * The session preamble: the host writes PREAMBLE first on every connection,
 * before TLS. A virtio-serial port has no connection boundaries: bytes of an
 * earlier, broken session (or the part of a ClientHello that reached the port
 * before the agent opened it) may still be in the pipe. The agent discards
 * everything up to the preamble, so each session's TLS handshake starts on a
 * clean byte boundary.
 */
import { Duplex } from "node:stream";

export const PREAMBLE = Buffer.from("NEURONOS-AGENT/1\r\n", "ascii");

/**
 * Resolves with a stream positioned just after the preamble (writes go to the
 * original stream), or null when the stream ends first. Holds at most
 * PREAMBLE.length - 1 bytes while scanning, whatever the peer sends.
 */
export function afterPreamble(stream: Duplex, onDiscard?: (bytes: number) => void): Promise<Duplex | null> {
  return new Promise((resolve) => {
    let tail = Buffer.alloc(0);
    let discarded = 0;
    const cleanup = () => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onEnd);
    };
    const onEnd = () => {
      cleanup();
      if (discarded + tail.length) onDiscard?.(discarded + tail.length);
      resolve(null);
    };
    const onData = (chunk: Buffer) => {
      const buf = tail.length ? Buffer.concat([tail, chunk]) : chunk;
      const at = buf.indexOf(PREAMBLE);
      if (at < 0) {
        const keep = Math.min(buf.length, PREAMBLE.length - 1);
        discarded += buf.length - keep;
        tail = Buffer.from(buf.subarray(buf.length - keep));
        return;
      }
      discarded += at;
      cleanup();
      stream.pause();
      if (discarded) onDiscard?.(discarded);
      resolve(continuation(stream, Buffer.from(buf.subarray(at + PREAMBLE.length))));
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
