/**
 * The PIN entry, pushed live: when a Moonlight client asks to pair (pairing.request), a panel
 * with a PIN field and a countdown appears on whatever page is open; its outcome (paired, wrong
 * PIN, expired, cancelled, already pairing, ...) is stated in words when the host reports it,
 * the one way errors are shown (what happened; for a failure, what to do). Successes and
 * notices fade by themselves; failures stay until dismissed; past three, older outcomes fold
 * under "N earlier outcomes" instead of stacking up.
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

type Tone = "ok" | "fail" | "info";
/** An outcome the one way errors are shown: what happened, and (for failures) what to do. */
export interface OutcomeNote {
  what: string;
  todo: string | null;
  tone: Tone;
}

const AGAIN = "Start the pairing again on the client.";
const OUTCOME_TEXT: Record<string, (o: Outcome) => OutcomeNote> = {
  paired: (o) => ({ what: `Paired: ${o.deviceName} can now stream from this machine.`, todo: null, tone: "ok" }),
  "wrong-pin": (o) => ({ what: `Wrong PIN: the PIN typed here is not the one ${o.deviceName} shows.`, todo: AGAIN, tone: "fail" }),
  expired: (o) => ({ what: `Expired: no PIN was entered in time for ${o.deviceName}.`, todo: AGAIN, tone: "fail" }),
  cancelled: (o) => ({ what: `Cancelled: the pairing with ${o.deviceName} was cancelled here. Nothing was stored.`, todo: null, tone: "info" }),
  "already-pairing": (o) => ({ what: `Already pairing: other clients are pairing right now, so ${o.address} was turned away. ${o.detail}`, todo: "Finish or cancel the pairing in progress, then start again on the client.", tone: "fail" }),
  superseded: (o) => ({ what: `Started over: ${o.deviceName} began a new pairing; enter the PIN it shows now.`, todo: null, tone: "info" }),
  "rate-limited": (o) => ({ what: `Too many attempts from ${o.address}: ${o.detail}`, todo: "Wait a minute, then start the pairing again on the client.", tone: "fail" }),
  failed: (o) => ({ what: `Pairing with ${o.deviceName ?? o.address} failed: ${o.detail}.`, todo: `${AGAIN} If it keeps failing, the audit log says more.`, tone: "fail" }),
};

export function outcomeText(o: Outcome): OutcomeNote {
  return (OUTCOME_TEXT[o.outcome] ?? OUTCOME_TEXT.failed!)(o);
}

/** How long a success or a notice stays before it fades; failures stay until dismissed. */
export const OUTCOME_FADE_MS = 6000;
/** Outcomes shown at once; older ones fold under "N earlier outcomes". */
export const OUTCOMES_SHOWN = 3;
const FADE_OUT_MS = 400;

export function mountPairingPanel(root: HTMLElement): void {
  const pending = new Map<string, Pending>();
  /** Newest first; one per pairing attempt (a loose one has no attempt). */
  let notes: (OutcomeNote & { key: string; fading: boolean })[] = [];
  let timer: number | null = null;
  const dropNote = (key: string) => {
    notes = notes.filter((n) => n.key !== key);
    render();
  };
  const addNote = (key: string, m: OutcomeNote) => {
    notes = [{ ...m, key, fading: false }, ...notes.filter((n) => n.key !== key)];
    if (m.tone !== "fail") {
      const note = notes[0]!;
      window.setTimeout(() => {
        if (!notes.includes(note)) return;
        note.fading = true;
        root.querySelector(`[data-note="${CSS.escape(key)}"]`)?.classList.add("fading");
        window.setTimeout(() => notes.includes(note) && dropNote(key), FADE_OUT_MS);
      }, OUTCOME_FADE_MS);
    }
  };
  const noteEl = (n: OutcomeNote & { key: string; fading: boolean }) => {
    const dismiss = h("button", { type: "button", class: "btn plain", title: "Hide this message" }, "Dismiss");
    dismiss.addEventListener("click", () => dropNote(n.key));
    return h(
      "div",
      { class: `outcome ${n.tone}${n.fading ? " fading" : ""}`, role: n.tone === "fail" ? "alert" : "status", "data-note": n.key },
      h("p", { class: "what" }, n.what),
      n.todo ? h("p", { class: "todo" }, h("span", { class: "label" }, "What to do: "), n.todo) : null,
      dismiss,
    );
  };

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
    const shown = notes.slice(0, OUTCOMES_SHOWN).map(noteEl);
    const older = notes.slice(OUTCOMES_SHOWN);
    const folded = older.length
      ? h("details", { class: "earlier" }, h("summary", null, `${older.length} earlier outcome${older.length === 1 ? "" : "s"}`), older.map(noteEl))
      : null;
    // keep what the user is typing
    const typed = new Map([...root.querySelectorAll<HTMLInputElement>("input.pin")].map((i) => [i.id, i.value]));
    const wasOpen = root.querySelector<HTMLDetailsElement>("details.earlier")?.open ?? false;
    replace(root, cards, notes.length ? h("div", { class: "outcomes", "aria-live": "polite" }, shown, folded) : null);
    if (wasOpen) root.querySelector<HTMLDetailsElement>("details.earlier")?.setAttribute("open", "");
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
      notes = notes.filter((n) => n.key !== d.attemptId);
      render();
    } else if (e.type === "pairing.outcome") {
      const o = e.data as Outcome;
      if (o.outcome === "pin-entered") return;
      if (o.attemptId) pending.delete(o.attemptId);
      addNote(o.attemptId ?? "loose", outcomeText(o));
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
