/** The one way errors are shown: what happened, and what to do about it. */
import { ApiError } from "./api.ts";
import { h, replace } from "./dom.ts";

export function advice(err: unknown): { what: string; todo: string } {
  if (!(err instanceof ApiError)) return { what: String((err as Error)?.message ?? err), todo: "Reload the page. If it happens again, check the service log (journalctl -u neuron-appliance)." };
  const what = err.message;
  switch (err.errorCode) {
    case "SESSION_EXPIRED":
    case "UNAUTHENTICATED":
      return { what, todo: "Run `neuron-appliance console open` on this machine and open the new link." };
    case "CSRF_TOKEN_MISSING":
      return { what, todo: "This tab lost its session key: open a new link from `neuron-appliance console open`." };
    case "READ_ONLY":
      return { what, todo: "Log in with an admin login code to change things." };
    case "NETWORK":
      return { what, todo: "Check that the appliance service runs (systemctl status neuron-appliance); the page reconnects by itself." };
    case "VALIDATION":
      return { what, todo: "Correct the highlighted values and try again." };
    case "SESSION_NO_VIDEO":
      return { what, todo: "The client has not started its stream yet: try again once its picture shows." };
    case "MIGRATION_SOURCE_UNSAFE":
      return { what: what.replace(/ To copy what the disk holds anyway.*$/, ""), todo: "Start Windows and shut it down fully (Shift + Shut down, or Fast Startup off), then plan again; or tick “Copy anyway” under the plan to copy what the disk holds now (read-only)." };
  }
  if (err.status === 404) return { what, todo: "It may have been removed meanwhile: the list is refreshed." };
  if (err.status === 409) return { what, todo: "Wait for the other operation to finish, or change what conflicts, then try again." };
  if (err.status === 422 || err.status === 400) return { what, todo: "Correct the values and try again." };
  if (err.status === 503 || err.status === 502) return { what, todo: "A component the appliance needs is not available: see the Dashboard's checks." };
  return { what, todo: "Try again; if it keeps failing, the audit log and the service log say more." };
}

let region: HTMLElement | null = null;
export function mountErrors(el: HTMLElement): void {
  region = el;
}

export function showError(err: unknown, doing: string): void {
  const { what, todo } = advice(err);
  if (!region) return;
  const close = h("button", { type: "button", class: "btn plain", title: "Hide this message" }, "Dismiss");
  close.addEventListener("click", () => clearError());
  replace(region, h("div", { class: "error-box" }, h("strong", null, `Could not ${doing}.`), h("p", null, h("span", { class: "label" }, "What happened: "), what), h("p", null, h("span", { class: "label" }, "What to do: "), todo), close));
  region.hidden = false;
  region.focus();
}

export function clearError(): void {
  if (!region) return;
  region.replaceChildren();
  region.hidden = true;
}

/** Runs an action, showing its failure the one way. */
export async function attempt<T>(doing: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    const r = await fn();
    return r;
  } catch (err) {
    showError(err, doing);
    return undefined;
  }
}
