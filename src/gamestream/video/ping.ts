/**
 * Client pings on the video (and audio) port: 16-character X-SS-Ping-Payload ‖ BE32
 * count (20 bytes), or the legacy 4-byte "PING". Anything else is not a ping.
 */
export type Ping = { kind: "payload"; payload: string; count: number } | { kind: "legacy" };

export const PING_BYTES = 20;
const PAYLOAD = /^[A-Za-z0-9]{16}$/;

export function parsePing(buf: Uint8Array, length: number): Ping | null {
  if (length === 4 && buf[0] === 0x50 && buf[1] === 0x49 && buf[2] === 0x4e && buf[3] === 0x47) return { kind: "legacy" };
  if (length !== PING_BYTES) return null;
  const payload = String.fromCharCode(...buf.subarray(0, 16));
  if (!PAYLOAD.test(payload)) return null;
  const count = ((buf[16]! << 24) | (buf[17]! << 16) | (buf[18]! << 8) | buf[19]!) >>> 0;
  return { kind: "payload", payload, count };
}
