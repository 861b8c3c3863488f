/**
 * The setup flow through the real core (createCore), its API and its CLI, with a private
 * libvirtd: the win11 template with every GPU function, the install media (Windows ISO, virtio
 * ISO, the generated answer ISO) attached and accepted by libvirt; the reboot is a fresh core on
 * the machine as it boots with vfio-pci. This sandbox cannot start a VM with host devices, so
 * first boot fails for real: the step says why and what to do, and the state stays clear.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { run } from "../../src/cli/index.ts";
import { createCore, type Core } from "../../src/core.ts";
import { silentLogger } from "../../src/log.ts";
import type { SetupStatus } from "../../src/setup/model.ts";
import { writeTarget } from "../fixtures/targets.ts";
import { asRoot } from "../helpers/api.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd, TEST_VIRSH_TIMEOUT_MS, type PrivateLibvirtd } from "../vm/libvirtd.ts";
import { machine } from "./helpers.ts";

setDefaultTimeout(60_000);
const SKIP = libvirtdUnavailable() ?? (Bun.which("xorriso") ? null : "xorriso is not installed");
if (SKIP) console.warn(`setup core tests skipped: ${SKIP}`);

let daemon: PrivateLibvirtd;
const dir = tempDir("neuron-setup-core-");

beforeAll(async () => {
  if (!SKIP) daemon = await startLibvirtd();
}, 60_000);
afterAll(async () => {
  if (!SKIP) await daemon.stop();
  dir.cleanup();
}, 60_000);

function iso(name: string, files: Record<string, string>): string {
  const src = join(dir.path, `${name}-src`);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(src, rel, ".."), { recursive: true });
    writeFileSync(join(src, rel), text);
  }
  const out = join(dir.path, `${name}.iso`);
  execFileSync("xorriso", ["-as", "mkisofs", "-quiet", "-J", "-V", name.toUpperCase(), "-o", out, src], { stdio: "pipe" });
  return out;
}

const coreOn = (root: string): Core =>
  createCore(
    testConfig({
      stateDir: join(dir.path, "state"),
      root,
      targetRoot: join(dir.path, "target"),
      etcDir: join(dir.path, "target", "etc"),
      libvirtUri: daemon.uri,
      libvirtTimeoutMs: TEST_VIRSH_TIMEOUT_MS,
      shmDir: daemon.shmDir,
      qmpDir: join(dir.path, "qmp"),
      spiceDir: join(dir.path, "spice"),
      bin: { chroot: "true" },
      setup: { guestWaitMs: 0, guestAgentExe: join(dir.path, "no-agent.exe") },
    }),
    { logger: silentLogger },
  );

const call = async (core: Core, method: string, path: string, body?: unknown) => {
  const res = await createApp(core).handle(
    asRoot(new Request(`http://localhost/api/v1${path}`, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) })),
  );
  return { status: res.status, body: (await res.json()) as SetupStatus & { error?: { code: string; message: string } } };
};

describe.skipIf(SKIP !== null)("setup through the core, the API and the CLI", () => {
  test("win11 with the GPU and the install media accepted by libvirt; first boot fails clearly here", async () => {
    const pre = machine("desktop-intel-nvidia", join(dir.path, "pre"), { bootId: "aaaa" });
    const post = machine("desktop-intel-nvidia-vfio", join(dir.path, "post"), { bootId: "bbbb" });
    writeTarget(join(dir.path, "target"), "debian-initramfs-tools");
    mkdirSync(join(dir.path, "target", "etc", "default"), { recursive: true });
    writeFileSync(join(dir.path, "target", "etc", "default", "locale"), "LANG=en_GB.UTF-8\n");
    const windowsIso = iso("win", { "sources/install.wim": "wim" });
    const virtioIso = iso("virtio", { "viostor/w11/amd64/viostor.inf": "inf", "virtio-win-guest-tools.exe": "MZ" });

    let core = coreOn(pre);
    try {
      // bad input through the API: clear error, nothing stored
      const bad = await call(core, "POST", "/setup/options", { gpu: "zz" });
      expect(bad.status).toBe(422);
      expect((await call(core, "GET", "/setup")).body.options).toEqual({ passwordSet: false });
      const seen: string[] = [];
      core.events.subscribe((e) => seen.push(`${e.type}:${(e.data as { step?: { id: string; state: string } }).step?.id}:${(e.data as { step?: { state: string } }).step?.state}`));
      let r = await call(core, "POST", "/setup/options", { windowsIso, virtioIso, user: "anna" });
      expect(r.status).toBe(200);
      r = await call(core, "POST", "/setup/advance", {});
      expect(r.body.state).toBe("waiting");
      expect(r.body.current).toBe("vfio-apply");
      const apply = r.body.steps.find((s) => s.id === "vfio-apply")!;
      expect(apply).toMatchObject({ state: "waiting", waitingFor: "confirm" });
      expect(String(r.body.steps.find((s) => s.id === "vfio-plan")!.result!.diff)).toContain("+options vfio-pci ids=10de:2484,10de:228b");
      expect(seen).toContain("setup.step:vfio-apply:waiting");
      // the GPU choice is locked once its step is done
      expect((await call(core, "POST", "/setup/options", { gpu: "0000:00:02.0" })).body.error?.code).toBe("SETUP_OPTION_LOCKED");

      // the CLI confirms (--yes); the flow stops for the reboot
      const out: string[] = [];
      const code = await run(["setup", "--yes", "--json", "--state-dir", join(dir.path, "state"), "--root", pre, "--target", join(dir.path, "target")], {
        stdout: (t) => out.push(t),
        stderr: () => undefined,
        env: { NEURON_LIBVIRT_URI: daemon.uri, NEURON_BIN_CHROOT: "true", NEURON_SHM_DIR: daemon.shmDir },
      });
      expect(code).toBe(0);
      const cli = JSON.parse(out.join("")) as SetupStatus;
      expect(cli.current).toBe("reboot");
      expect(cli.steps.find((s) => s.id === "reboot")).toMatchObject({ state: "waiting", waitingFor: "reboot" });
      core.close();

      // the reboot: a fresh core on the machine as it booted (the GPU on vfio-pci, a new boot id)
      core = coreOn(post);
      const booted = await core.setup.bootVerify();
      expect(booted.steps.find((s) => s.id === "verify")!.state).toBe("done");
      expect(booted.current).toBe("vm");
      r = await call(core, "POST", "/setup/advance", { until: "install-media" });
      const vm = r.body.steps.find((s) => s.id === "vm")!;
      expect(vm.state).toBe("done");
      const media = r.body.steps.find((s) => s.id === "install-media")!;
      expect(media.state).toBe("done");
      const xml = await daemon.virsh().dumpxml("windows", true);
      for (const f of ["0x01", "function='0x1'"]) expect(xml.replace(/"/g, "'")).toContain(f);
      expect((xml.match(/<hostdev /g) ?? []).length).toBe(2);
      for (const p of [windowsIso, virtioIso, String(media.result!.unattendIso)]) expect(xml).toContain(p);
      expect(xml).toContain("tpm-crb");
      expect(xml).toMatch(/secure-boot/);

      // first boot: this sandbox cannot start it (no such host devices / Hyper-V): failed, with advice
      r = await call(core, "POST", "/setup/advance", {});
      const fb = r.body.steps.find((s) => s.id === "first-boot")!;
      expect(r.body.state).toBe("failed");
      expect(fb.state).toBe("failed");
      expect(fb.error?.code).toBeTruthy();
      expect(fb.advice).toBeTruthy();
      expect(r.body.steps.filter((s) => s.state === "pending").map((s) => s.id)).toEqual(["agent", "looking-glass", "app", "done"]);

      // status from the CLI reads the same state
      const out2: string[] = [];
      expect(await run(["setup", "status", "--json", "--state-dir", join(dir.path, "state"), "--root", post], { stdout: (t) => out2.push(t), stderr: () => undefined, env: {} })).toBe(0);
      const st = JSON.parse(out2.join("")) as SetupStatus;
      expect(st.steps.map((s) => s.state)).toEqual(r.body.steps.map((s) => s.state));

      // reset from vm: those steps are pending again (the definition stays in libvirt; the vm step finds it)
      r = await call(core, "POST", "/setup/reset", { from: "vm" });
      expect(r.body.current).toBe("vm");
      expect((await call(core, "POST", "/setup/reset", { from: "nope" })).status).toBe(422);
    } finally {
      core.close();
      await daemon.virsh().undefine("windows").catch(() => undefined);
    }
  }, 120_000);
});
