/**
 * Constants of the GameStream protocol that several parts of the host share (nvhttp's
 * serverinfo, RTSP DESCRIBE and ANNOUNCE, the encoder probe): a leaf module, so the
 * modules that use them import it instead of each other.
 */

/** ServerCodecModeSupport bits. */
export const CODEC = { H264: 0x1, HEVC: 0x100, HEVC_MAIN10: 0x200, AV1_MAIN8: 0x10000, AV1_MAIN10: 0x20000 } as const;

export interface GameStreamPorts {
  http: number;
  https: number;
  rtsp: number;
  video: number;
  control: number;
  audio: number;
}

/** All ports from one base, as clients expect: HTTP = base, HTTPS = base − 5, RTSP = base + 21, … */
export function portsFromBase(base: number): GameStreamPorts {
  return { http: base, https: base - 5, rtsp: base + 21, video: base + 9, control: base + 10, audio: base + 11 };
}
