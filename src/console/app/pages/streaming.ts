/**
 * Streaming: paired clients with their permissions, the PIN entry (the live panel above every
 * page), live sessions with their figures as charts, ending a session, changing its bitrate live.
 */
import { ApiError, del, get, patch, post } from "../api.ts";
import { Sparkline } from "../chart.ts";
import { badge, button, confirmAction, fmtTime, h, replace, section, table } from "../dom.ts";
import { attempt } from "../errors.ts";
import { on } from "../events.ts";
import { absent, livePage, type Page } from "./live.ts";

const PERMISSIONS = ["view", "keyboard", "mouse", "controller", "launch", "clipboard"] as const;
const PERMISSION_HELP: Record<string, string> = {
  view: "see the host and its apps, resume its own session",
  keyboard: "type into the VM",
  mouse: "move and click in the VM",
  controller: "use gamepads",
  launch: "start apps",
  clipboard: "share the clipboard",
};

interface PairingInfo {
  id: number;
  name: string;
  fingerprint: string;
  permissions: string[];
  createdAt: string;
  lastSeenAt: string | null;
}
interface Stats {
  id: string;
  client: string | null;
  app: string;
  codec: string | null;
  mode: string;
  hostFps: number;
  bitrateKbps: number | null;
  framesSent: number;
  framesLost: number;
  fecRecovered: number;
  fecUnrecoverable: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

function permissionBoxes(p: PairingInfo): HTMLElement {
  const box = h("fieldset", { class: "perms" }, h("legend", null, `What ${p.name} may do`));
  for (const perm of PERMISSIONS) {
    const id = `perm-${p.id}-${perm}`;
    const input = h("input", { type: "checkbox", id, checked: p.permissions.includes(perm), title: PERMISSION_HELP[perm] }) as HTMLInputElement;
    input.addEventListener("change", async () => {
      const change = input.checked ? { grant: [perm] } : { revoke: [perm] };
      const ok = await attempt(`${input.checked ? "grant" : "revoke"} ${perm} for ${p.name}`, () => post(`/pairings/${p.id}/permissions`, change));
      if (ok === undefined) input.checked = !input.checked;
    });
    box.appendChild(h("span", { class: "perm" }, input, h("label", { for: id, title: PERMISSION_HELP[perm] }, perm)));
  }
  return box;
}

/**
 * The bitrate control of a session: kept across the card's re-renders (session.stats every
 * second), so what is being typed stays; its placeholder follows the session's bitrate.
 */
function bitrateForm(s: Stats, forms: Map<string, HTMLFormElement>): HTMLFormElement {
  let form = forms.get(s.id);
  if (!form) {
    const id = `bitrate-${s.id}`;
    const input = h("input", { id, name: "bitrateKbps", type: "number", min: 500, max: 500000, step: 100, required: true, inputmode: "numeric", class: "bitrate", "aria-describedby": `${id}-note` }) as HTMLInputElement;
    const note = h("span", { id: `${id}-note`, class: "note", role: "status" });
    const submit = h("button", { type: "submit", class: "btn", title: "The session's encoder takes the new bitrate from its next frame; the stream goes on" }, "Set bitrate");
    form = h("form", { class: "bitrate-form", novalidate: true, "aria-label": `Bitrate of the session of ${s.client ?? "a client"}` }, h("label", { for: id }, "Bitrate (kbit/s)"), input, submit, note);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const kbps = Number(input.value);
      if (!Number.isInteger(kbps) || kbps < 500 || kbps > 500000) {
        note.textContent = "A whole number from 500 to 500000 kbit/s.";
        return input.focus();
      }
      submit.disabled = true;
      const r = await attempt("change the session's bitrate", () => patch<{ bitrateKbps: number | null }>(`/sessions/${s.id}`, { bitrateKbps: kbps }));
      submit.disabled = false;
      if (r) {
        note.textContent = `Now ${r.bitrateKbps} kbit/s.`;
        input.value = "";
        input.placeholder = String(r.bitrateKbps);
      }
    });
    forms.set(s.id, form);
  }
  const input = form.querySelector<HTMLInputElement>("input")!;
  if (s.bitrateKbps !== null) input.placeholder = String(s.bitrateKbps);
  return form;
}

function sessionCard(s: Stats, charts: Map<string, Sparkline[]>, forms: Map<string, HTMLFormElement>): HTMLElement {
  let c = charts.get(s.id);
  if (!c) {
    c = [new Sparkline("Host fps", "fps"), new Sparkline("Bitrate", "kbit/s"), new Sparkline("Frames lost", "frames"), new Sparkline("FEC recovered", "frames"), new Sparkline("Latency p50", "ms")];
    charts.set(s.id, c);
  }
  const end = button(
    "End session",
    async () => {
      if (await confirmAction(`End the session of ${s.client ?? "this client"}?`, "Its stream stops now; the client can connect again.", "End session")) await attempt("end the session", () => del(`/sessions/${s.id}`));
    },
    { title: "Stop this stream (the client is told)", kind: "danger" },
  );
  const bitrate = bitrateForm(s, forms);
  return h(
    "article",
    { class: "session card", "data-session": s.id, "aria-label": `Session of ${s.client ?? "a client"}` },
    h("h3", null, `${s.client ?? "Client"} — ${s.app}`),
    h("p", { class: "facts" }, `Codec ${s.codec ?? "—"} · mode ${s.mode} · bitrate ${s.bitrateKbps ?? "—"} kbit/s · ${s.framesSent} frames sent · FEC unrecoverable ${s.fecUnrecoverable} · latency p99 ${s.latencyP99Ms} ms`),
    h("div", { class: "sparks" }, c.map((x) => x.el)),
    h("div", { class: "row-actions" }, bitrate, end),
  );
}

export const streamingPage: Page = {
  title: "Streaming",
  render(root) {
    root.appendChild(h("p", null, "When a Moonlight client asks to pair, the PIN entry appears at the top of every page of this console."));
    const clients = livePage(
      root,
      "paired clients",
      async () => {
        let list: PairingInfo[];
        try {
          list = await get<PairingInfo[]>("/pairings");
        } catch (err) {
          if (err instanceof ApiError && (err.status === 503 || err.status === 404)) return absent("Streaming", "GameStream", "enable the GameStream host (config gamestreamEnabled) and restart the service.");
          throw err;
        }
        return section(
          "Paired clients",
          table(
            ["Client", "Paired", "Last seen", "Permissions", ""],
            list.map((p) => [
              h("span", { title: `certificate SHA-256 ${p.fingerprint}` }, p.name),
              fmtTime(p.createdAt),
              fmtTime(p.lastSeenAt),
              permissionBoxes(p),
              button(
                "Unpair",
                async () => {
                  if (await confirmAction(`Unpair ${p.name}?`, "It can no longer stream until it pairs again with a new PIN.", "Unpair")) await attempt(`unpair ${p.name}`, () => del(`/pairings/${p.id}`));
                  clients.reload();
                },
                { title: "Forget this client", kind: "danger" },
              ),
            ]),
            "Moonlight clients paired with this host",
          ),
        );
      },
      ["pairing.outcome"],
    );
    const charts = new Map<string, Sparkline[]>();
    const forms = new Map<string, HTMLFormElement>();
    const sessionsBox = section("Live sessions", h("p", { class: "empty" }, "No session is streaming."));
    const body = h("div", { class: "sessions" });
    sessionsBox.appendChild(body);
    root.appendChild(sessionsBox);
    const show = (list: Stats[]) => {
      sessionsBox.querySelector(".empty")?.toggleAttribute("hidden", list.length > 0);
      for (const s of list) {
        const c = charts.get(s.id);
        const existing = body.querySelector(`[data-session="${CSS.escape(s.id)}"]`);
        const card = sessionCard(s, charts, forms);
        if (existing) existing.replaceWith(card);
        else body.appendChild(card);
        const [fps, rate, lost, fec, lat] = charts.get(s.id)!;
        fps!.push(s.hostFps);
        rate!.push(s.bitrateKbps ?? 0);
        lost!.push(s.framesLost);
        fec!.push(s.fecRecovered);
        lat!.push(s.latencyP50Ms);
        void c;
      }
      for (const el of [...body.querySelectorAll<HTMLElement>("[data-session]")]) if (!list.some((s) => s.id === el.dataset.session)) (el.remove(), charts.delete(el.dataset.session!), forms.delete(el.dataset.session!));
    };
    void get<{ id: string; client: { name: string | null }; appName: string; codec: string | null; width: number; height: number; fps: number; hdr: boolean; hostFps: number; bitrateKbps: number | null; framesSent: number; loss: { framesLostReported: number; fecRecoveredFrames: number; fecUnrecoverableFrames: number }; latency: { p50Ms: number; p99Ms: number } }[]>("/sessions")
      .then((l) =>
        show(
          l.map((s) => ({ id: s.id, client: s.client.name, app: s.appName, codec: s.codec, mode: `${s.width}x${s.height}@${s.fps}${s.hdr ? " HDR" : ""}`, hostFps: s.hostFps, bitrateKbps: s.bitrateKbps, framesSent: s.framesSent, framesLost: s.loss.framesLostReported, fecRecovered: s.loss.fecRecoveredFrames, fecUnrecoverable: s.loss.fecUnrecoverableFrames, latencyP50Ms: s.latency.p50Ms, latencyP99Ms: s.latency.p99Ms })),
        ),
      )
      .catch(() => undefined);
    const off = on(["session."], (e) => {
      if (e.type === "session.stats") show((e.data as { sessions: Stats[] }).sessions);
      else if (e.type === "session.ended") {
        const d = e.data as { id: string; reason: string };
        const el = body.querySelector(`[data-session="${CSS.escape(d.id)}"]`);
        el?.remove();
        charts.delete(d.id);
        forms.delete(d.id);
        replace(sessionsBox.querySelector(".ended") ?? sessionsBox.appendChild(h("p", { class: "ended", role: "status" })), `A session ended: ${d.reason}.`);
      }
    });
    void badge;
    return () => {
      clients.dispose();
      off();
    };
  },
};
