/** Apps: the catalog Moonlight clients see, with box art. */
import { ApiError, call, del, get, post } from "../api.ts";
import { button, confirmAction, field, h, section, table } from "../dom.ts";
import { attempt, showError } from "../errors.ts";
import { livePage, type Page } from "./live.ts";

interface App {
  id: number;
  name: string;
  kind: "desktop" | "command" | "vm";
  command: string | null;
  vmName: string | null;
  boxArtPath: string | null;
  sortOrder: number;
}

const MAX_BOXART = 512 * 1024;

async function uploadBoxArt(app: App, file: File): Promise<void> {
  if (file.type !== "image/png") throw new ApiError(422, "VALIDATION", `${file.name} is not a PNG image (Moonlight shows PNG box art)`);
  if (file.size > MAX_BOXART) throw new ApiError(422, "VALIDATION", `${file.name} is ${Math.round(file.size / 1024)} KiB; box art may be at most ${MAX_BOXART / 1024} KiB`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  await call("PUT", `/apps/${app.id}/boxart`, { pngBase64: btoa(bin) });
}

function editRow(app: App, reload: () => void): unknown[] {
  const name = h("input", { value: app.name, "aria-label": `Name of ${app.name}`, maxlength: 100 }) as HTMLInputElement;
  const save = button(
    "Save",
    async () => {
      if (name.value.trim() !== app.name) await attempt(`rename ${app.name}`, () => call("PATCH", `/apps/${app.id}`, { name: name.value.trim() }));
      reload();
    },
    { title: "Save the new name" },
  );
  const fileId = `boxart-${app.id}`;
  const file = h("input", { type: "file", id: fileId, accept: "image/png", class: "file" }) as HTMLInputElement;
  file.addEventListener("change", async () => {
    const f = file.files?.[0];
    if (!f) return;
    try {
      await uploadBoxArt(app, f);
      reload();
    } catch (err) {
      showError(err, `upload box art for ${app.name}`);
    }
  });
  const remove = button(
    "Remove",
    async () => {
      if (await confirmAction(`Remove ${app.name}?`, "Moonlight clients no longer see it.", "Remove app")) {
        await attempt(`remove ${app.name}`, () => del(`/apps/${app.id}`));
        reload();
      }
    },
    { title: "Take this app out of the catalog", kind: "danger" },
  );
  return [
    name,
    app.kind,
    app.kind === "vm" ? `VM ${app.vmName}` : (app.command ?? "the desktop"),
    h("span", { class: "boxart" }, app.boxArtPath ? "custom" : "default", " ", h("label", { for: fileId, class: "btn plain", title: "Upload a PNG (at most 512 KiB) as this app's box art" }, "Upload box art"), file),
    h("div", { class: "row-actions" }, save, remove),
  ];
}

export const appsPage: Page = {
  title: "Apps",
  render(root) {
    const list = livePage(root, "app catalog", async () => {
      const { apps } = await get<{ apps: App[] }>("/apps");
      return table(["Name", "Kind", "Runs", "Box art", ""], apps.map((a) => editRow(a, list.reload) as never), "The apps Moonlight clients can start");
    });
    const name = h("input", { required: true, maxlength: 100 }) as HTMLInputElement;
    const kind = h("select", null, h("option", { value: "vm" }, "A VM"), h("option", { value: "command" }, "A command"), h("option", { value: "desktop" }, "The desktop")) as HTMLSelectElement;
    const target = h("input", { maxlength: 4096 }) as HTMLInputElement;
    const form = h("form", { class: "grid", "aria-label": "Add an app" }, field("Name", name), field("Kind", kind), field("VM name or command", target, "the VM to start, or the command line to run"), h("div", { class: "actions" }, h("button", { type: "submit", class: "btn primary", title: "Add it to the catalog" }, "Add app")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body: Record<string, unknown> = { name: name.value.trim(), kind: kind.value };
      if (kind.value === "vm") body.vmName = target.value.trim();
      if (kind.value === "command") body.command = target.value;
      if (await attempt(`add ${body.name}`, () => post("/apps", body))) {
        form.reset();
        list.reload();
      }
    });
    root.appendChild(section("Add an app", form));
    return list.dispose;
  },
};
