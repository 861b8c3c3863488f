/**
 * The PIN entry, pushed live: when a Moonlight client asks to pair (pairing.request), a panel
 * with a PIN field and a countdown appears on whatever page is open; its outcome (paired, wrong
 * PIN, expired, cancelled, already pairing, ...) is stated in words when the host reports it.
 */
import { ApiError, del, get, post } from "./api.ts";
import { h, replace } from "./dom.ts";
import { on } from "./events.ts";

interface Pending {
  id: string;
  deviceName: string;
  remoteIp: string;
  createdAt: string;
  expiresAt: string;
}

interface Outcome {
  attemptId: string | null;
  outcome: string;
  address: string;
  deviceName: string | null;
  detail: string;
}

const OUTCOME_TEXT: Record<string, (o: Outcome) => { text: string; tone: "ok" | "fail" | "info" }> = {
  paired: (o) => ({ text: `Paired: ${o.deviceName} can now stream from this machine.`, tone: "ok" }),
  "wrong-pin": (o) => ({ text: `Wrong PIN: the PIN typed here is not the one ${o.deviceName} shows. Start the pairing again on the client.`, tone: "fail" }),
  expired: (o) => ({ text: `Expired: no PIN was entered in time for ${o.deviceName}. Start the pairing again on the client.`, tone: "fail" }),
  cancelled: (o) => ({ text: `Cancelled: the pairing with ${o.deviceName} was cancelled here. Nothing was stored.`, tone: "info" }),
  "already-pairing": (o) => ({ text: `Already pairing: other clients are pairing right now, so ${o.address} was turned away. ${o.detail}`, tone: "fail" }),
  superseded: (o) => ({ text: `Started over: ${o.deviceName} began a new pairing; enter the PIN it shows now.`, tone: "info" }),
  "rate-limited": (o) => ({ text: `Too many attempts from ${o.address}: ${o.detail}`, tone: "fail" }),
  failed: (o) => ({ text: `Pairing with ${o.deviceName ?? o.address} failed: ${o.detail}.`, tone: "fail" }),
};

export function outcomeText(o: Outcome) {
  return (OUTCOME_TEXT[o.outcome] ?? OUTCOME_TEXT.failed!)(o);
}

export function mountPairingPanel(root: HTMLElement): void {
  const pending = new Map<string, Pending>();
  const messages = new Map<string, { text: string; tone: string }>();
  const looseMessages: { text: string; tone: string }[] = [];
  let timer: number | null = null;

  const card = (p: Pending): HTMLElement => {
    const pinId = `pin-${p.id}`;
    const input = h("input", { id: pinId, name: "pin", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{4}", maxlength: 4, minlength: 4, required: true, class: "pin", "aria-describedby": `${pinId}-time` }) as HTMLInputElement;
    const countdown = h("span", { id: `${pinId}-time`, class: "countdown", "data-expires": p.expiresAt });
    const note = h("p", { class: "note", role: "status" });
    const submit = h("button", { type: "submit", class: "btn primary", title: "Send the PIN to finish pairing" }, "Pair");
    const cancel = h("button", { type: "button", class: "btn danger", title: "Refuse this client: its pairing ends now, nothing is stored" }, "Cancel");
    const form = h(
      "form",
      { class: "pair-card", "aria-label": `Pairing request from ${p.deviceName}` },
      h("h2", null, `${p.deviceName} wants to pair`),
      h("p", null, `From ${p.remoteIp}. Type the 4-digit PIN this client shows.`),
      h("div", { class: "pin-row" }, h("label", { for: pinId }, "PIN"), input, submit, cancel),
      countdown,
      note,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!/^\d{4}$/.test(input.value)) {
        note.textContent = "The PIN is the 4 digits the client shows.";
        input.focus();
        return;
      }
      submit.disabled = true;
      try {
        await post("/pairing/pin", { pin: input.value, attemptId: p.id });
        note.textContent = "PIN sent; waiting for the client to finish…";
      } catch (err) {
        submit.disabled = false;
        note.textContent = err instanceof ApiError ? `${err.message}.` : String(err);
      }
    });
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        await del(`/pairing/pending/${p.id}`);
      } catch (err) {
        cancel.disabled = false;
        note.textContent = err instanceof ApiError ? `${err.message}.` : String(err);
      }
    });
    return form;
  };

  const tick = () => {
    for (const el of root.querySelectorAll<HTMLElement>(".countdown")) {
      const left = Math.max(0, Math.round((Date.parse(el.dataset.expires!) - Date.now()) / 1000));
      el.textContent = left > 0 ? `${left} s left to enter it` : "time is up";
    }
  };

  const render = () => {
    const cards = [...pending.values()].map((p) => {
      const c = card(p);
      return c;
    });
    const notes = [...messages.values(), ...looseMessages].map((m) => h("p", { class: `outcome ${m.tone}`, role: "status" }, m.text));
    // keep what the user is typing
    const typed = new Map([...root.querySelectorAll<HTMLInputElement>("input.pin")].map((i) => [i.id, i.value]));
    replace(root, cards, notes.length ? h("div", { class: "outcomes", "aria-live": "polite" }, notes) : null);
    for (const [id, v] of typed) {
      const i = document.getElementById(id) as HTMLInputElement | null;
      if (i) i.value = v;
    }
    tick();
    if (pending.size && timer === null) timer = window.setInterval(tick, 1000);
    if (!pending.size && timer !== null) (window.clearInterval(timer), (timer = null));
    const first = root.querySelector<HTMLInputElement>("input.pin");
    if (first && cards.length && !typed.size) first.focus();
  };

  on(["pairing."], (e) => {
    if (e.type === "reset") return void load();
    if (e.type === "pairing.request") {
      const d = e.data as Pending & { attemptId: string; address: string };
      pending.set(d.attemptId, { id: d.attemptId, deviceName: d.deviceName, remoteIp: d.address, createdAt: d.createdAt, expiresAt: d.expiresAt });
      messages.delete(d.attemptId);
      render();
    } else if (e.type === "pairing.outcome") {
      const o = e.data as Outcome;
      if (o.outcome === "pin-entered") return;
      const m = outcomeText(o);
      if (o.attemptId) {
        pending.delete(o.attemptId);
        messages.set(o.attemptId, m);
      } else looseMessages.splice(0, looseMessages.length, m);
      render();
    }
  });

  const load = async () => {
    try {
      const list = await get<Pending[]>("/pairing/pending");
      pending.clear();
      for (const p of list) pending.set(p.id, p);
      render();
    } catch {
      /* GameStream off or unavailable: the Streaming page says so */
    }
  };
  void load();
}
