/** A few DOM helpers: the console's whole "framework". No inline styles (the CSP forbids them). */
export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (ev: Event) => void;
export type Attrs = Record<string, string | number | boolean | null | undefined | Handler>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v as Handler);
    else if (k === "value" && "value" in el) {
      // the attribute too: a form's reset() returns to it
      if (el instanceof HTMLInputElement) el.setAttribute("value", String(v));
      (el as HTMLInputElement).value = String(v);
    }
    else if (k === "checked" && el instanceof HTMLInputElement) el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let uid = 0;
export const nextId = (prefix: string) => `${prefix}-${++uid}`;

/** A labelled form field: the label names the control (for screen readers and for clicks). */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  control.id ||= nextId("f");
  const hintEl = hint ? h("small", { id: `${control.id}-hint`, class: "hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl);
}

export function button(label: string, onClick: () => void | Promise<void>, opts: { title: string; kind?: "primary" | "danger" | "plain"; disabled?: boolean; type?: "button" | "submit" } = { title: "" }): HTMLButtonElement {
  const b = h("button", { type: opts.type ?? "button", class: `btn ${opts.kind ?? "plain"}`, title: opts.title, disabled: opts.disabled }, label);
  b.addEventListener("click", async (ev) => {
    if (opts.type === "submit") return;
    ev.preventDefault();
    b.disabled = true;
    try {
      await onClick();
    } finally {
      if (b.isConnected) b.disabled = opts.disabled ?? false;
    }
  });
  return b;
}

export function table(headers: string[], rows: Child[][], caption: string): HTMLElement {
  return h(
    "div",
    // a region that scrolls sideways on a phone: reachable by keyboard, named by its caption
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      null,
      h("caption", null, caption),
      h("thead", null, h("tr", null, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", null, rows.length ? rows.map((r) => h("tr", null, r.map((c) => h("td", null, c)))) : h("tr", null, h("td", { colspan: headers.length, class: "empty" }, "Nothing here yet."))),
    ),
  );
}

export function badge(text: string, tone: "ok" | "warn" | "fail" | "info" | "off"): HTMLElement {
  return h("span", { class: `badge ${tone}` }, text);
}

/** Asks before a destructive action; resolves true only on an explicit yes. */
export function confirmAction(title: string, text: string, yes: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" });
    const done = (v: boolean) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    const cancel = h("button", { type: "button", class: "btn plain", title: "Leave everything as it is" }, "Cancel");
    cancel.addEventListener("click", () => done(false));
    const ok = h("button", { type: "button", class: "btn danger", title: text }, yes);
    ok.addEventListener("click", () => done(true));
    dlg.addEventListener("cancel", (e) => (e.preventDefault(), done(false)));
    append(dlg, [h("h2", { id: "confirm-title" }, title), h("p", null, text), h("div", { class: "actions" }, cancel, ok)]);
    document.body.appendChild(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

export function section(title: string, ...children: Child[]): HTMLElement {
  const id = nextId("s");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export const fmtTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "—");
