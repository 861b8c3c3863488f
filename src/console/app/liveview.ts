/**
 * A running VM's live view: its H.264 (GET /vms/{name}/live, one record per access unit) decoded
 * by WebCodecs onto a canvas; with the pointer locked on the canvas, keyboard and mouse go to the
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
  const ctl = new AbortController();
  let decoder: VideoDecoder | null = null;
  let frames = 0;
  const ctx = canvas.getContext("2d")!;

  const run = async () => {
    if (typeof VideoDecoder === "undefined") return void (status.textContent = "This browser cannot decode video (no WebCodecs): use Looking Glass or Moonlight.");
    const res = await fetch(`/api/v1/vms/${encodeURIComponent(vm)}/live`, { signal: ctl.signal, credentials: "same-origin" });
    if (!res.ok || !res.body) {
      const e = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      return void (status.textContent = `No live view: ${e?.error?.message ?? res.status}.`);
    }
    const reader = res.body.getReader();
    let buf = new Uint8Array(0);
    let t = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return void (status.textContent = "The live view ended (the VM stopped, or its frames did).");
      const next = new Uint8Array(buf.length + value.length);
      next.set(buf);
      next.set(value, buf.length);
      buf = next;
      while (buf.length >= 4) {
        const len = new DataView(buf.buffer, buf.byteOffset).getUint32(0);
        if (buf.length < 4 + len) break;
        const rec = buf.slice(4, 4 + len);
        buf = buf.slice(4 + len);
        const idr = (rec[0]! & 1) === 1;
        const width = (rec[1]! << 8) | rec[2]!;
        const height = (rec[3]! << 8) | rec[4]!;
        const au = rec.subarray(5);
        if (!decoder) {
          if (!idr) continue;
          const codec = avcCodec(au) ?? "avc1.42e01f";
          decoder = new VideoDecoder({
            output: (f) => {
              if (canvas.width !== f.displayWidth) ((canvas.width = f.displayWidth), (canvas.height = f.displayHeight));
              ctx.drawImage(f, 0, 0);
              f.close();
              canvas.dataset.frames = String(++frames);
            },
            error: (e) => (status.textContent = `Decoding failed: ${e.message}`),
          });
          decoder.configure({ codec, codedWidth: width, codedHeight: height, optimizeForLatency: true });
          status.textContent = `${width}×${height} H.264, live. Click the picture to control the VM.`;
        }
        decoder.decode(new EncodedVideoChunk({ type: idr ? "key" : "delta", timestamp: (t += 16_666), data: au }));
      }
    }
  };
  void run().catch((err: unknown) => {
    if (!ctl.signal.aborted) status.textContent = `The live view stopped: ${(err as Error).message}`;
  });

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
      ctl.abort();
      if (locked()) document.exitPointerLock();
      decoder?.close();
      for (const [t, f] of [["mousemove", onMove], ["mousedown", down], ["mouseup", up], ["keydown", kd], ["keyup", ku], ["pointerlockchange", onLock]] as const) document.removeEventListener(t, f as EventListener);
      el.remove();
    },
  };
}
