/**
 * A running VM's live view: its H.264 over a WebSocket (/api/v1/vms/{name}/live, one binary
 * message per access unit) decoded by WebCodecs onto a canvas; with the pointer locked on the canvas, keyboard and mouse go to the
 * VM through POST /vms/{name}/inject-input in small batches (every animation frame at most).
 */
import { ApiError, call } from "./api.ts";
import { h } from "./dom.ts";
import { hidUsage } from "./keymap.ts";

type InputEvent = { type: "key"; usage: number; down: boolean } | { type: "move"; dx: number; dy: number } | { type: "button"; button: number; down: boolean } | { type: "wheel"; dy: number; dx: number } | { type: "releaseAll" };

/** "avc1.PPCCLL" from the first SPS NAL of an Annex B access unit. */
function avcCodec(au: Uint8Array): string | null {
  for (let i = 0; i + 7 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1 && (au[i + 3]! & 0x1f) === 7) {
      const hex = (b: number) => b.toString(16).padStart(2, "0");
      return `avc1.${hex(au[i + 4]!)}${hex(au[i + 5]!)}${hex(au[i + 6]!)}`;
    }
  }
  return null;
}

export function liveView(vm: string): { el: HTMLElement; close(): void } {
  const canvas = h("canvas", { width: 1280, height: 720, class: "live-canvas", tabindex: "0", role: "img", "aria-label": `Live view of ${vm}: click to capture keyboard and mouse, Escape to release`, title: "Click to send keyboard and mouse to the VM; Escape releases them" });
  const status = h("p", { role: "status", class: "note" }, "Connecting…");
  const el = h("section", { class: "card live-view", "aria-label": `Live view of ${vm}` }, h("h2", null, `Live view: ${vm}`), status, canvas);
  let decoder: VideoDecoder | null = null;
  let frames = 0;
  const ctx = canvas.getContext("2d")!;

  let ws: WebSocket | null = null;
  let closed = false;
  let t = 0;
  const unit = (msg: ArrayBuffer) => {
    const rec = new Uint8Array(msg);
    if (rec.length < 6) return;
    const idr = (rec[0]! & 1) === 1;
    const width = (rec[1]! << 8) | rec[2]!;
    const height = (rec[3]! << 8) | rec[4]!;
    const au = rec.subarray(5);
    if (!decoder || decoder.state === "closed") {
      if (!idr) return;
      const codec = avcCodec(au) ?? "avc1.42e01f";
      decoder = new VideoDecoder({
        output: (f) => {
          if (canvas.width !== f.displayWidth) ((canvas.width = f.displayWidth), (canvas.height = f.displayHeight));
          ctx.drawImage(f, 0, 0);
          f.close();
          canvas.dataset.frames = String(++frames);
        },
        error: (e) => {
          // the next IDR starts a new decoder
          status.textContent = `Decoding failed: ${e.message}. Waiting for the next full frame…`;
          decoder = null;
        },
      });
      // Annex B in, no description: the SPS and PPS travel in front of every IDR
      decoder.configure({ codec, codedWidth: width, codedHeight: height, optimizeForLatency: true });
      status.textContent = `${width}×${height} H.264, live. Click the picture to control the VM.`;
    }
    // a decoder that falls behind drops what it has not decoded and starts again at an IDR
    if (decoder.decodeQueueSize > 30) {
      if (!idr) return;
      decoder.reset();
      decoder.configure({ codec: avcCodec(au) ?? "avc1.42e01f", codedWidth: width, codedHeight: height, optimizeForLatency: true });
    }
    decoder.decode(new EncodedVideoChunk({ type: idr ? "key" : "delta", timestamp: (t += 16_666), data: au }));
  };
  const run = () => {
    if (typeof VideoDecoder === "undefined") return void (status.textContent = "This browser cannot decode video (no WebCodecs): use Looking Glass or Moonlight.");
    // the session cookie goes with the upgrade; the appliance checks the Origin
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/v1/vms/${encodeURIComponent(vm)}/live?fps=30`;
    const sock = new WebSocket(url);
    ws = sock;
    sock.binaryType = "arraybuffer";
    let opened = false;
    let ended: string | null = null;
    sock.onopen = () => void (opened = true);
    sock.onmessage = (m) => {
      if (typeof m.data !== "string") return unit(m.data as ArrayBuffer);
      const msg = JSON.parse(m.data) as { type: string; reason?: string };
      if (msg.type === "ready") status.textContent = "Connected; waiting for the first full frame…";
      else if (msg.type === "end") ended = msg.reason ?? "it ended";
    };
    sock.onclose = (e) => {
      if (closed) return;
      if (!opened) return void refused();
      status.textContent = ended ? `The live view ended: ${ended}. Start the VM and open the live view again.` : `The live view ended: ${e.reason || "the connection closed"}. Open it again; if it keeps ending, check the service log.`;
    };
  };
  /** A refused upgrade says nothing to the page's WebSocket: the same request over HTTP says why. */
  const refused = async () => {
    try {
      const r = await fetch(`/api/v1/vms/${encodeURIComponent(vm)}/live`, { credentials: "same-origin", cache: "no-store" });
      const e = (await r.json().catch(() => null)) as { error?: { message?: string } } | null;
      status.textContent = r.status === 426 ? "No live view: the WebSocket could not connect (a proxy in between may refuse WebSockets)." : `No live view: ${e?.error?.message ?? r.status}.`;
    } catch (err) {
      status.textContent = `No live view: ${(err as Error).message}.`;
    }
  };
  run();

  // input: pointer lock on the canvas, batched per animation frame
  let queue: InputEvent[] = [];
  let scheduled = false;
  let inputOff = false;
  const flush = async () => {
    scheduled = false;
    const events = queue;
    queue = [];
    if (!events.length || inputOff) return;
    try {
      await call("POST", `/vms/${encodeURIComponent(vm)}/inject-input`, { events });
    } catch (err) {
      if (err instanceof ApiError && err.status === 429) {
        // INPUT_BUSY: the VM still takes earlier input and nothing of this batch was sent: again, in order
        queue = [...events, ...queue];
        if (!scheduled) ((scheduled = true), setTimeout(() => void flush(), 20));
        return;
      }
      if (err instanceof ApiError && err.status === 404 && err.errorCode === "NOT_FOUND") {
        inputOff = true;
        status.textContent = "This appliance cannot send input to VMs (no inject-input API): the view is read-only.";
      } else status.textContent = `Input refused: ${(err as Error).message}`;
    }
  };
  const send = (e: InputEvent) => {
    const last = queue.at(-1);
    if (e.type === "move" && last?.type === "move" && Math.abs(last.dx + e.dx) < 32767 && Math.abs(last.dy + e.dy) < 32767) ((last.dx += e.dx), (last.dy += e.dy));
    else queue.push(e);
    if (!scheduled) ((scheduled = true), requestAnimationFrame(() => void flush()));
  };
  const locked = () => document.pointerLockElement === canvas;
  canvas.addEventListener("click", () => void (locked() || canvas.requestPointerLock()));
  const onMove = (e: MouseEvent) => locked() && (e.movementX || e.movementY) && send({ type: "move", dx: Math.round(e.movementX), dy: Math.round(e.movementY) });
  const onButton = (down: boolean) => (e: MouseEvent) => locked() && send({ type: "button", button: [1, 2, 3, 4, 5][e.button] ?? 1, down });
  const onWheel = (e: WheelEvent) => {
    if (!locked()) return;
    e.preventDefault();
    send({ type: "wheel", dy: Math.round(-e.deltaY), dx: Math.round(e.deltaX) });
  };
  const onKey = (down: boolean) => (e: KeyboardEvent) => {
    if (!locked()) return;
    const usage = hidUsage(e.code);
    if (usage === null) return;
    e.preventDefault();
    send({ type: "key", usage, down });
  };
  const onLock = () => {
    if (!locked()) send({ type: "releaseAll" });
    status.textContent = locked() ? "Keyboard and mouse go to the VM. Escape releases them." : status.textContent;
  };
  const down = onButton(true);
  const up = onButton(false);
  const kd = onKey(true);
  const ku = onKey(false);
  document.addEventListener("mousemove", onMove);
  document.addEventListener("mousedown", down);
  document.addEventListener("mouseup", up);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  document.addEventListener("keydown", kd);
  document.addEventListener("keyup", ku);
  document.addEventListener("pointerlockchange", onLock);
  return {
    el,
    close() {
      closed = true;
      ws?.close(1000, "closed");
      if (locked()) document.exitPointerLock();
      if (decoder && decoder.state !== "closed") decoder.close();
      for (const [t, f] of [["mousemove", onMove], ["mousedown", down], ["mouseup", up], ["keydown", kd], ["keyup", ku], ["pointerlockchange", onLock]] as const) document.removeEventListener(t, f as EventListener);
      el.remove();
    },
  };
}
