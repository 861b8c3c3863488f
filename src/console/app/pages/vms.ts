/** VMs: the list with state, create from a template, start / stop / force off, shared memory, agent, Looking Glass. */
import { ApiError, del, get, getOptional, post } from "../api.ts";
import { badge, button, confirmAction, field, h, section, table } from "../dom.ts";
import { attempt } from "../errors.ts";
import { livePage, type Page } from "./live.ts";
import { previewFor } from "../preview.ts";
import { liveView } from "../liveview.ts";

/** The one open live view (the list below re-renders on events; the view stays). */
let openView: { vm: string; close(): void } | null = null;
let viewSlot: HTMLElement | null = null;

function showLive(vm: string): void {
  openView?.close();
  const v = liveView(vm);
  const close = h("button", { type: "button", class: "btn plain", title: "Close the live view" }, "Close live view");
  close.addEventListener("click", () => (openView?.close(), (openView = null)));
  v.el.appendChild(close);
  openView = { vm, close: v.close };
  viewSlot?.replaceChildren(v.el);
  v.el.querySelector("canvas")?.focus();
}

interface VmSummary {
  name: string;
  state: string;
}
interface VmDetails {
  name: string;
  state: string;
  template: string | null;
  resolution: { width: number; height: number } | null;
  vcpus: number | null;
  memoryMiB: number | null;
  shm: { name: string; sizeMiB: number; path: string } | null;
  hostdevs: string[];
}
interface Agent {
  connected: boolean;
  state: string;
  error: string | null;
  info: { os: { name: string; version: string } } | null;
}
interface Gpu {
  address: string;
  name: string;
  role: string;
}

const RESOLUTIONS = ["1280x720", "1920x1080", "2560x1440", "3840x2160"];
const stateTone = (s: string) => (s === "running" ? "ok" : s === "paused" || s === "in shutdown" ? "warn" : s === "crashed" ? "fail" : "off");

function createForm(gpus: Gpu[], onDone: () => void): HTMLElement {
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._-]*", maxlength: 64, autocomplete: "off" }) as HTMLInputElement;
  const template = h("select", { name: "template" }, h("option", { value: "win11" }, "Windows 11"), h("option", { value: "win10" }, "Windows 10"), h("option", { value: "linux" }, "Linux")) as HTMLSelectElement;
  const gpu = h("select", { name: "gpu" }, h("option", { value: "" }, "No GPU (display only)"), gpus.filter((g) => g.role === "candidate").map((g) => h("option", { value: g.address }, `${g.name} (${g.address})`))) as HTMLSelectElement;
  const res = h("select", { name: "resolution" }, RESOLUTIONS.map((r) => h("option", { value: r, selected: r === "1920x1080" }, r))) as HTMLSelectElement;
  const mem = h("input", { name: "memory", type: "number", min: 1, max: 1024, value: 8, required: true }) as HTMLInputElement;
  const cpus = h("input", { name: "vcpus", type: "number", min: 1, max: 256, value: 4, required: true }) as HTMLInputElement;
  const disk = h("input", { name: "disk", type: "number", min: 0, max: 65536, value: 0 }) as HTMLInputElement;
  const net = h("select", { name: "network" }, h("option", { value: "nat" }, "NAT (libvirt's default network)"), h("option", { value: "none" }, "None")) as HTMLSelectElement;
  const result = h("p", { role: "status", class: "note" });
  const form = h(
    "form",
    { class: "grid", "aria-label": "Create a VM" },
    field("Name", name, "letters, digits, '.', '_' and '-'"),
    field("Template", template),
    field("GPU", gpu, "GPUs the hardware check found fit for passthrough"),
    field("Resolution", res, "sizes the Looking Glass shared memory"),
    field("Memory (GiB)", mem),
    field("vCPUs", cpus),
    field("New disk (GiB, 0 for none)", disk),
    field("Network", net, "the default network must be active in libvirt"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "btn primary", title: "Define the VM in libvirt (its disk and shared memory too)" }, "Create VM")),
    result,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const [w, hgt] = res.value.split("x").map(Number) as [number, number];
    const spec: Record<string, unknown> = {
      name: name.value.trim(),
      template: template.value,
      vcpus: Number(cpus.value),
      memoryMiB: Number(mem.value) * 1024,
      resolution: { width: w, height: hgt },
      disk: Number(disk.value) > 0 ? { kind: "new", sizeGiB: Number(disk.value) } : { kind: "none" },
      network: net.value === "nat" ? { kind: "nat", network: "default" } : { kind: "none" },
    };
    if (gpu.value) spec.gpu = gpu.value;
    const created = await attempt(`create VM ${spec.name}`, () => post<{ name: string; shm: { sizeMiB: number } }>("/vms", spec));
    if (created) {
      result.textContent = `VM ${created.name} created (shared memory ${created.shm.sizeMiB} MiB).`;
      form.reset();
      onDone();
    }
  });
  return form;
}

function vmRow(vm: VmSummary, details: VmDetails | null, agent: Agent | null, reload: () => void): unknown[] {
  const running = vm.state === "running" || vm.state === "paused";
  const start = button("Start", async () => void (await attempt(`start ${vm.name}`, () => post(`/vms/${vm.name}/start`))), { title: `Boot ${vm.name}`, kind: "primary", disabled: running });
  const stop = button("Stop", async () => void (await attempt(`stop ${vm.name}`, () => post(`/vms/${vm.name}/stop`, { timeoutSeconds: 60 }))), { title: "Ask the guest to shut down (ACPI), forcing it off after 60 s", disabled: !running });
  const force = button(
    "Force off",
    async () => {
      if (await confirmAction(`Force ${vm.name} off?`, "Like pulling the plug: unsaved work in the guest is lost.", "Force off")) await attempt(`force ${vm.name} off`, () => post(`/vms/${vm.name}/destroy`));
    },
    { title: "Pull the plug at once (unsaved guest work is lost)", kind: "danger", disabled: !running },
  );
  const remove = button(
    "Delete",
    async () => {
      if (await confirmAction(`Delete ${vm.name}?`, "Its definition, firmware variables and TPM state are removed; its disk image stays.", "Delete VM")) {
        await attempt(`delete ${vm.name}`, () => del(`/vms/${vm.name}`));
        reload();
      }
    },
    { title: "Remove the VM's definition (the disk stays)", kind: "danger", disabled: running },
  );
  const lgIni = details?.shm ? `looking-glass-client -f ${details.shm.path}` : null;
  const lg = lgIni
    ? button(
        "Open in Looking Glass",
        async () => {
          await navigator.clipboard?.writeText(lgIni).catch(() => undefined);
          alertNote(`Run on this machine's desktop: ${lgIni} (copied to the clipboard)`);
        },
        { title: "Looking Glass shows the VM's screen on this desktop at native speed; copies its command", disabled: vm.state !== "running" },
      )
    : null;
  const live = button("Live view", () => showLive(vm.name), { title: "Watch the VM's screen here (H.264 decoded in this page) and control it with keyboard and mouse", disabled: vm.state !== "running" || !details?.shm });
  return [
    h("strong", null, vm.name),
    badge(vm.state, stateTone(vm.state)),
    details ? `${details.template ?? "?"}, ${details.vcpus ?? "?"} vCPU, ${details.memoryMiB ? details.memoryMiB / 1024 : "?"} GiB${details.hostdevs.length ? `, GPU ${details.hostdevs[0]}` : ""}` : "—",
    details?.shm ? `${details.shm.sizeMiB} MiB` : "none",
    agent ? badge(agent.connected ? `connected${agent.info ? ` (${agent.info.os.name})` : ""}` : agent.state, agent.connected ? "ok" : "off") : "—",
    vm.state === "running" ? previewFor(vm.name) : "—",
    h("div", { class: "row-actions" }, start, stop, force, live, lg, remove),
  ];
}

function alertNote(text: string): void {
  const n = document.getElementById("vm-note");
  if (n) n.textContent = text;
}

export const vmsPage: Page = {
  title: "VMs",
  render(root) {
    viewSlot = h("div", { class: "live-slot" });
    root.appendChild(viewSlot);
    let reloadList = () => {};
    const list = livePage(
      root,
      "VM list",
      async () => {
        const { vms } = await get<{ vms: VmSummary[] }>("/vms");
        const details = await Promise.all(vms.map((v) => get<VmDetails>(`/vms/${v.name}`).catch(() => null)));
        const agents = await Promise.all(vms.map((v) => (v.state === "running" ? getOptional<Agent>(`/vms/${v.name}/agent`).catch((e: unknown) => (e instanceof ApiError ? null : null)) : Promise.resolve(null))));
        return [
          h("p", { id: "vm-note", role: "status", class: "note" }),
          table(["Name", "State", "Spec", "Shared memory", "Agent", "Preview", "Actions"], vms.map((v, i) => vmRow(v, details[i] ?? null, agents[i] ?? null, reloadList) as never), "Virtual machines and their state"),
        ];
      },
      ["vm.state"],
    );
    reloadList = list.reload;
    const createCard = section("Create a VM", h("p", { class: "loading" }, "Loading GPUs…"));
    root.appendChild(createCard);
    void (async () => {
      const hw = await getOptional<{ gpus: Gpu[] }>("/hardware").catch(() => null);
      createCard.querySelector(".loading")?.remove();
      createCard.appendChild(createForm(hw?.gpus ?? [], list.reload));
    })();
    return () => {
      openView?.close();
      openView = null;
      list.dispose();
    };
  },
};
