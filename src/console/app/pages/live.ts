/** What every page does: load from the API, render, and load again when a relevant event arrives. */
import { h, replace, type Child } from "../dom.ts";
import { showError } from "../errors.ts";
import { on } from "../events.ts";

export interface Page {
  title: string;
  render(root: HTMLElement): () => void;
}

/**
 * Renders `load()` into a region of root; events with one of the prefixes re-run it (coalesced:
 * at most one reload in flight, one more queued). Returns the dispose function.
 */
export function livePage(root: HTMLElement, what: string, load: () => Promise<Child>, prefixes: string[] = []): { dispose: () => void; reload: () => void } {
  const region = h("div", { class: "page-body", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading…"));
  root.appendChild(region);
  let running = false;
  let again = false;
  let gone = false;
  const reload = async () => {
    if (running) return void (again = true);
    running = true;
    region.setAttribute("aria-busy", "true");
    try {
      const content = await load();
      if (!gone) replace(region, content);
    } catch (err) {
      if (!gone) {
        replace(region, h("p", { class: "empty" }, `The ${what} could not be loaded.`));
        showError(err, `load the ${what}`);
      }
    } finally {
      region.setAttribute("aria-busy", "false");
      running = false;
      if (again && !gone) {
        again = false;
        void reload();
      }
    }
  };
  const off = prefixes.length ? on(prefixes, () => void reload()) : () => {};
  void reload();
  return {
    dispose: () => {
      gone = true;
      off();
    },
    reload: () => void reload(),
  };
}

/** The message a page shows where the appliance has no such API (yet). */
export function absent(what: string, path: string, instead: string): HTMLElement {
  return h(
    "div",
    { class: "absent", role: "status" },
    h("h2", null, `${what} is not available on this appliance`),
    h("p", null, `The appliance has no ${path} API (it answered 404 Not Found): this build does not include ${what.toLowerCase()} yet.`),
    h("p", null, "What to do: ", instead),
  );
}
