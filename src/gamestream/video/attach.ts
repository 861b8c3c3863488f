/**
 * Wires the video stream to the session lifecycle: PLAY starts a session's video,
 * the session's end stops it. The returned handle exposes requestIdr for the control
 * stream and closes everything it opened.
 */
import { existsSync } from "node:fs";
import { CaptureNative } from "../../../ffi/capture.ts";
import { StreamNative } from "../../../ffi/stream.ts";
import { VsockNative } from "../../../ffi/vsock.ts";
import { NvfListenerPool } from "../../capture/nvf-listeners.ts";
import type { VmTransportChoice } from "../../capture/sources.ts";
import { describeError } from "../../errors.ts";
import { shmPath } from "../../vm/shm.ts";
import type { Logger } from "../../log.ts";
import type { SessionEvent, SessionStore, StreamSession } from "../sessions.ts";
import { VideoStream, type SourceEnd } from "./stream.ts";
import type { VmStateProbe } from "./vm-liveness.ts";
import { hostDesktopOpener, type HostSessionEnv } from "../../capture/host-output.ts";

export interface AttachedVideo {
  readonly stream: VideoStream;
  /** The VMs' NVF1 listeners (null without a transport resolver). */
  readonly nvf: NvfListenerPool | null;
  requestIdr(sessionId: string): boolean;
  /** What the session subscription does with an event (for the PLAY that attached the stream). */
  handle(e: SessionEvent): void;
  close(): void;
}

export function attachVideoStream(o: {
  nativePath: string;
  sessions: SessionStore;
  host: string;
  port: number;
  shmDir: string;
  log: Logger;
  encoderThreads?: number;
  /** libvirt's state of a VM, so a VM source notices its VM shut down. */
  vmState?: VmStateProbe;
  liveness?: { stallMs?: number; checkIntervalMs?: number };
  /** Hears why a session's source ended, before the session is ended. */
  onSourceEnded?: (session: StreamSession, end: SourceEnd) => void;
  /** The host's desktop session (bus, PipeWire socket), for apps of kind host-desktop. */
  hostSession?: () => HostSessionEnv;
  /**
   * How a VM exports its frames (IVSHMEM → vsock → unix socket, capture/sources.ts), asked at
   * PLAY when the VM has no shared memory file; absent: such a VM streams the test pattern.
   */
  vmTransport?: (vm: string) => Promise<VmTransportChoice>;
}): AttachedVideo {
  const streamNative = new StreamNative(o.nativePath);
  const capture = new CaptureNative(o.nativePath);
  let vsock: VsockNative | null = null;
  let nvf: NvfListenerPool | null = null;
  let stream: VideoStream;
  try {
    stream = new VideoStream({
      stream: streamNative,
      capture,
      host: o.host,
      port: o.port,
      shmDir: o.shmDir,
      log: o.log,
      encoderThreads: o.encoderThreads,
      vmState: o.vmState,
      liveness: o.liveness,
      hostDesktop: o.hostSession ? hostDesktopOpener(o.nativePath, o.hostSession, o.log) : null,
      nvf: o.vmTransport ? (nvf = new NvfListenerPool((vsock = new VsockNative(o.nativePath)))) : null,
      // a source that stops for good (VM shut down) ends its session
      onSourceEnded: (s, end) => {
        o.log.info("the session's source ended", { session: s.id, vm: s.vmName, reason: end.reason });
        try {
          o.onSourceEnded?.(s, end);
        } finally {
          o.sessions.end(s.id, "source-ended", end.reason);
        }
      },
    });
  } catch (err) {
    vsock?.close();
    capture.close();
    streamNative.close();
    throw err;
  }
  // sessions whose VM's transport is being asked: a session that ends meanwhile is not started
  const resolving = new Set<string>();
  const start = (session: StreamSession, transport: VmTransportChoice | null) => {
    try {
      stream.start(session, transport);
    } catch (err) {
      o.log.error("video stream could not start", { session: session.id, error: err });
    }
  };
  const handle = (e: SessionEvent) => {
    if (e.type === "playing") {
      const vm = e.session.vmName;
      if (!vm || !o.vmTransport || existsSync(shmPath(o.shmDir, vm))) return start(e.session, null);
      const id = e.session.id;
      resolving.add(id);
      o.vmTransport(vm).then(
        (t) => {
          if (!resolving.delete(id)) return;
          o.log.info("the VM's frame transport", { session: id, vm, transport: t.kind, reason: t.reason });
          start(e.session, t);
        },
        (err) => {
          if (!resolving.delete(id)) return;
          o.log.warn("cannot tell how the VM exports its frames; streaming the test pattern", { session: id, vm, error: describeError(err) });
          start(e.session, null);
        },
      );
    } else if (e.type === "ended") {
      resolving.delete(e.session.id);
      stream.stop(e.session.id);
    }
  };
  const unsubscribe = o.sessions.subscribe(handle);
  return {
    stream,
    nvf,
    requestIdr: (id) => stream.requestIdr(id),
    handle,
    close() {
      unsubscribe();
      resolving.clear();
      stream.close();
      nvf?.close();
      vsock?.close();
      capture.close();
      streamNative.close();
    },
  };
}
