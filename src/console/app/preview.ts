/**
 * Low-rate thumbnails of a running VM: one stream per VM (GET /vms/{name}/preview), whose frames
 * the appliance pushes (length-prefixed PNGs); each is drawn on a canvas as it arrives.
 */
import { h } from "./dom.ts";

export function previewFor(vm: string): HTMLElement {
  const canvas = h("canvas", { width: 160, height: 90, class: "thumb", role: "img", "aria-label": `Preview of ${vm}`, "data-vm": vm });
  const ctl = new AbortController();
  void pump(vm, canvas, ctl.signal).catch(() => canvas.setAttribute("data-state", "unavailable"));
  // stops when the row leaves the page
  const obs = new MutationObserver(() => {
    if (!canvas.isConnected) (ctl.abort(), obs.disconnect());
  });
  queueMicrotask(() => obs.observe(document.body, { childList: true, subtree: true }));
  return canvas;
}

async function pump(vm: string, canvas: HTMLCanvasElement, signal: AbortSignal): Promise<void> {
  const res = await fetch(`/api/v1/vms/${encodeURIComponent(vm)}/preview`, { signal, credentials: "same-origin" });
  if (!res.ok || !res.body) throw new Error(`preview ${res.status}`);
  const reader = res.body.getReader();
  let buf = new Uint8Array(0);
  const ctx = canvas.getContext("2d")!;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
    while (buf.length >= 4) {
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(0);
      if (buf.length < 4 + len) break;
      const img = await createImageBitmap(new Blob([buf.slice(4, 4 + len)], { type: "image/png" }));
      buf = buf.slice(4 + len);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      canvas.setAttribute("data-frames", String(Number(canvas.getAttribute("data-frames") ?? 0) + 1));
    }
  }
}
