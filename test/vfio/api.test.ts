import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createCore } from "../../src/core.ts";
import { createLogger } from "../../src/log.ts";
import { HardwareReport } from "../../src/hardware/model.ts";
import { run } from "../../src/cli/index.ts";
import { fixtureRoot } from "../fixtures/sysfs/build.ts";
import { writeTarget } from "../fixtures/targets.ts";
import { snapshot } from "./helpers.ts";
import { asRoot } from "../helpers/api.ts";

const base = mkdtempSync(join(tmpdir(), "neuron-vfio-api-"));
const target = join(base, "target");
writeTarget(target, "arch-grub-mkinitcpio");
const config = loadConfig({
  env: {},
  configPath: undefined,
  flags: { root: fixtureRoot("desktop-intel-nvidia"), targetRoot: target, stateDir: join(base, "state") },
});
const core = createCore(config, { logger: createLogger({ level: "error", format: "json" }) });
const app = createApp(core);
afterAll(() => {
  core.close();
  rmSync(base, { recursive: true, force: true });
});

const call = async (method: string, path: string, body?: unknown) => {
  const res = await app.handle(
    asRoot(new Request(`http://localhost/api/v1${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    })),
  );
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
};

describe("API", () => {
  test("GET /hardware returns the report in its schema", async () => {
    const r = await call("GET", "/hardware");
    expect(r.status).toBe(200);
    const report = HardwareReport.parse(r.body);
    expect(report.gpus.find((g) => g.role === "candidate")?.address).toBe("0000:01:00.0");
  });

  test("plan → apply → apply → rollback through the API", async () => {
    const original = snapshot(target);
    const plan = await call("GET", "/vfio/plan?gpu=01:00.0");
    expect(plan.status).toBe(200);
    expect(plan.body.diff).toContain("+options vfio-pci ids=10de:2484,10de:228b");
    expect(snapshot(target)).toEqual(original);
    const a = await call("POST", "/vfio/apply", { gpu: "0000:01:00.0" });
    expect(a.status).toBe(200);
    expect(a.body.changed).toBe(true);
    const b = await call("POST", "/vfio/apply", { gpu: "0000:01:00.0" });
    expect(b.body.changed).toBe(false);
    const rb = await call("POST", "/vfio/rollback", {});
    expect(rb.status).toBe(200);
    expect(rb.body.rolledBack).toBe(a.body.auditId);
    expect(snapshot(target)).toEqual(original);
  });

  test("bad input: 422 / 404 / 409 with a stable code, nothing written", async () => {
    const original = snapshot(target);
    const cases: [string, string, unknown, number, string][] = [
      ["GET", "/vfio/plan?gpu=nonsense", undefined, 422, "VALIDATION_FAILED"],
      ["GET", "/vfio/plan", undefined, 422, "VALIDATION_FAILED"],
      ["GET", "/vfio/plan?gpu=0000:01:00.0&acsOverride=maybe", undefined, 422, "VALIDATION_FAILED"],
      ["POST", "/vfio/apply", { gpu: "0000:01:00.0", force: true }, 422, "VALIDATION_FAILED"],
      ["POST", "/vfio/apply", { gpu: "0000:00:02.0" }, 409, "GPU_IS_HOST"],
      ["POST", "/vfio/apply", { gpu: "0000:02:00.0" }, 422, "NOT_A_GPU"],
      ["POST", "/vfio/apply", { gpu: "0000:42:00.0" }, 404, "NOT_FOUND"],
      ["POST", "/vfio/rollback", { id: -1 }, 422, "VALIDATION_FAILED"],
      ["POST", "/vfio/rollback", { id: 999 }, 404, "NOT_FOUND"],
      ["GET", "/vfio/verify?gpu=0000:01:00.0", undefined, 200, ""],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await call(method, path, body);
      expect([path, r.status]).toEqual([path, status]);
      if (code) expect(r.body.error?.code).toBe(code);
    }
    expect(snapshot(target)).toEqual(original);
  });

  test("the OpenAPI document names the routes and schemas", async () => {
    const res = await app.handle(new Request("http://localhost/swagger/json"));
    const doc = (await res.json()) as { paths: Record<string, unknown>; components?: { schemas?: Record<string, unknown> } };
    for (const p of ["/api/v1/hardware", "/api/v1/vfio/plan", "/api/v1/vfio/apply", "/api/v1/vfio/rollback", "/api/v1/vfio/verify"]) expect(doc.paths[p]).toBeDefined();
    expect(JSON.stringify(doc)).toContain("needsAcsOverride");
  });
});

describe("CLI", () => {
  const cli = async (...argv: string[]) => {
    let out = "";
    let err = "";
    const code = await run(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {} });
    return { code, out, err };
  };

  test("hardware detect --json and text", async () => {
    const j = await cli("hardware", "detect", "--root", fixtureRoot("laptop-nvidia-3d-nvme"), "--json");
    expect(j.code).toBe(0);
    const report = HardwareReport.parse(JSON.parse(j.out));
    expect(report.gpus.find((g) => g.address === "0000:01:00.0")?.needsAcsOverride).toBe(true);
    const t = await cli("hardware", "detect", "--root", fixtureRoot("amd-two-gpus-reset-bug"));
    expect(t.out).toContain("reset bug: AMD_POLARIS10");
  });

  test("unknown flags, subcommands and bad ids are usage errors", async () => {
    expect((await cli("hardware", "detect", "--bogus")).code).toBe(2);
    expect((await cli("hardware", "probe")).code).toBe(2);
    expect((await cli("vfio", "plan")).code).toBe(2);
    expect((await cli("vfio", "rollback", "abc", "--state-dir", join(base, "s2"))).code).toBe(2);
    expect((await cli("vfio", "plan", "--gpu", "01:00.0", "--regenerate")).code).toBe(2);
  });

  test("vfio plan / apply / rollback from the command line", async () => {
    const t2 = join(base, "cli-target");
    writeTarget(t2, "debian-initramfs-tools");
    const original = snapshot(t2);
    const common = ["--root", fixtureRoot("amd-two-gpus-reset-bug"), "--target", t2, "--state-dir", join(base, "cli-state")];
    const plan = await cli("vfio", "plan", "--gpu", "0d:00.0", ...common);
    expect(plan.code).toBe(0);
    expect(plan.out).toContain("+vfio_virqfd");
    expect(plan.out).toContain("update-initramfs -u -k all");
    expect(snapshot(t2)).toEqual(original);
    expect(existsSync(join(base, "cli-state"))).toBe(false); // plan opens no database
    const apply = await cli("vfio", "apply", "--gpu", "0d:00.0", "--json", ...common);
    expect(apply.code).toBe(0);
    expect(JSON.parse(apply.out).changed).toBe(true);
    const rb = await cli("vfio", "rollback", String(JSON.parse(apply.out).auditId), "--target", t2, "--state-dir", join(base, "cli-state"));
    expect(rb.code).toBe(0);
    expect(snapshot(t2)).toEqual(original);
    const verify = await cli("vfio", "verify", "--gpu", "0d:00.0", ...common);
    expect(verify.code).toBe(1);
    expect(verify.out).toContain("[FAIL] driver 0000:0d:00.0");
  });
});
