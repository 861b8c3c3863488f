/**
 * The console's shell: login from the fragment's one-time code, the navigation, the router
 * (#/page), the live connection and the pairing panel that appears on every page the moment a
 * Moonlight client asks for a PIN.
 */
import { ApiError, csrfToken, get, login, logout } from "./api.ts";
import { h, replace } from "./dom.ts";
import { clearError, mountErrors, showError } from "./errors.ts";
import { connect, disconnect, onState } from "./events.ts";
import { mountPairingPanel } from "./pairing.ts";
import { PAGES, type PageId } from "./pages/index.ts";

const app = document.getElementById("app")!;

function loginScreen(message: string): void {
  replace(
    app,
    h(
      "main",
      { class: "login", id: "main" },
      h("h1", null, "NeuronOS console"),
      h("p", { role: "status" }, message),
      h("p", null, "On this machine, run:"),
      h("pre", null, h("code", null, "neuron-appliance console open")),
      h("p", null, "and open the link it prints. Each link works once, for a few minutes."),
    ),
  );
  document.title = "Log in — NeuronOS console";
}

function shell(whoami: { caller: string; scope: string }): void {
  const nav = h("nav", { "aria-label": "Pages" });
  const list = h("ul", null);
  for (const [id, p] of Object.entries(PAGES)) list.appendChild(h("li", null, h("a", { href: `#/${id}`, "data-page": id }, p.title)));
  nav.appendChild(list);
  const status = h("span", { class: "live", role: "status", title: "The live event stream: updates arrive without reloading" }, "connecting…");
  const out = h("button", { type: "button", class: "btn plain", title: "End this browser session" }, "Log out");
  out.addEventListener("click", async () => {
    await logout().catch(() => undefined);
    disconnect();
    loginScreen("You are logged out.");
  });
  const menu = h("button", { type: "button", class: "btn plain menu", "aria-expanded": "false", "aria-controls": "nav", title: "Show or hide the pages" }, "Menu");
  nav.id = "nav";
  menu.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    menu.setAttribute("aria-expanded", String(open));
  });
  const errors = h("div", { id: "errors", class: "errors", role: "alert", tabindex: "-1", hidden: true });
  const pairing = h("div", { id: "pairing-panel" });
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(
    app,
    h("a", { href: "#main", class: "skip" }, "Skip to content"),
    h("header", { class: "top" }, h("span", { class: "brand" }, "NeuronOS"), menu, status, h("span", { class: "who", title: "Who this session acts as" }, `${whoami.caller} (${whoami.scope})`), out),
    nav,
    h("div", { class: "content" }, errors, pairing, main),
  );
  mountErrors(errors);
  mountPairingPanel(pairing);
  onState((s) => {
    status.textContent = s === "live" ? "live" : s === "connecting" ? "reconnecting…" : "offline";
    status.className = `live ${s}`;
  });
  connect();
  let dispose: (() => void) | null = null;
  const route = () => {
    const id = (location.hash.replace(/^#\/?/, "") || "dashboard") as PageId;
    const page = PAGES[id] ?? PAGES.dashboard;
    dispose?.();
    clearError();
    main.replaceChildren();
    for (const a of nav.querySelectorAll("a")) {
      if (a.dataset.page === id) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    nav.classList.remove("open");
    menu.setAttribute("aria-expanded", "false");
    document.title = `${page.title} — NeuronOS console`;
    main.appendChild(h("h1", null, page.title));
    dispose = page.render(main);
  };
  window.addEventListener("hashchange", route);
  route();
}

async function boot(): Promise<void> {
  const m = /^#code=([^&]+)/.exec(location.hash);
  if (m) {
    // the code leaves the address bar (and history) before anything else
    history.replaceState(null, "", location.pathname + "#/dashboard");
    try {
      await login(decodeURIComponent(m[1]!));
    } catch (err) {
      const why = err instanceof ApiError ? err.message : String(err);
      return loginScreen(`That login link did not work: ${why}.`);
    }
  }
  if (!csrfToken()) return loginScreen("You are not logged in.");
  try {
    const who = await get<{ caller: string; scope: string; kind: string }>("/auth/whoami");
    if (who.kind !== "session") return loginScreen("Your session has ended.");
    shell(who);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return loginScreen("Your session has ended.");
    loginScreen("The appliance did not answer.");
    showError(err, "load the console");
  }
}

void boot();
