/** Shared by the RTSP tests: the sample ANNOUNCE body, and a session started the way /launch starts one. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/env.ts";
import type { gameStreamHost } from "./helpers.ts";

export const SAMPLE_SDP = readFileSync(join(REPO_ROOT, "test", "fixtures", "gamestream", "announce-sample.sdp"), "utf8");

/** Starts a session on the host directly (what /launch does), with a fresh random key. */
export function launchDirect(host: ReturnType<typeof gameStreamHost>, encrypted: boolean) {
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
  const s = host.service.sessions.start({
    appId: 1, appName: "Desktop", vmName: null, width: 1280, height: 720, fps: 60,
    riKey: new Uint8Array(key), riKeyId: 7, localAudioPlayMode: 0, surroundAudioInfo: 0x30002,
    remoteControllersBitmap: 1, gcmap: 1, hdr: false, encryptedRtsp: encrypted, clientFingerprint: "test",
  });
  return { key, session: s };
}

