/**
 * The service as a user runs it: `serve` with the GameStream host on loopback,
 * a client pairing, and the PIN entered with `neuron-appliance pair --pin`
 * through the local API socket; then `pair list` / `pair remove`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, REPO_ROOT, runCli, tempDir } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity } from "./client.ts";
import { freeBasePort } from "./helpers.ts";

let dir: ReturnType<typeof tempDir>;
let proc: Bun.Subprocess<"ignore", "ignore", "pipe">;
let base: number;
const env = () => ({ NEURON_STATE_DIR: join(dir.path, "state"), NEURON_GAMESTREAM_ENABLED: "true", NEURON_GAMESTREAM_HOST: "127.0.0.1", NEURON_GAMESTREAM_PORT: String(base), NEURON_PORT: "0", NEURON_PAIRING_ATTEMPTS_PER_MINUTE: "100" });

beforeAll(async () => {
  dir = tempDir("neuron-serve-gs-");
  base = freeBasePort();
  // the base port from the flag, which wins over the environment's
  proc = Bun.spawn([BUN, join(REPO_ROOT, "src", "main.ts"), "serve", "--log-format", "json", "--gamestream-port", String(base)], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir.path, NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json"), ...env(), NEURON_GAMESTREAM_PORT: String(freeBasePort()) },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const reader = proc.stderr.getReader();
  let log = "";
  while (!log.includes("GameStream host listening")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited: ${log}`);
    log += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const listening = log.split("\n").find((l) => l.includes("GameStream host listening"))!;
  expect(JSON.parse(listening)).toMatchObject({ http: base, https: base - 5, rtsp: base + 21 });
  startLog = log;
});
let startLog = "";
afterAll(async () => {
  proc.kill("SIGTERM");
  await proc.exited;
  dir.cleanup();
});

describe("serve + pair CLI", () => {
  test("a fresh state dir: the identity's key came from openssl, the API answered before the host was up", async () => {
    expect(startLog).toContain('"msg":"GameStream identity created"');
    expect(startLog.indexOf('"msg":"listening"')).toBeLessThan(startLog.indexOf('"msg":"GameStream host listening"'));
    const info = await new GameStreamTestClient("127.0.0.1", base, base - 5, makeClientIdentity(dir.path)).http("/serverinfo");
    expect(["1", "257"]).toContain(info.fields.ServerCodecModeSupport!);
  });

  test("a client pairs with the PIN entered through `pair --pin`; `pair list` and `pair remove` manage it", async () => {
    const keys = tempDir("neuron-keys-");
    try {
      const client = new GameStreamTestClient("127.0.0.1", base, base - 5, makeClientIdentity(keys.path));
      expect(runCli(["pair", "pending", "--json"], env()).stdout.trim()).toBe("[]");
      const result = await client.pair("4321", async () => {
        for (let i = 0; i < 200; i++) {
          const pending = JSON.parse(runCli(["pair", "pending", "--json"], env()).stdout);
          if (pending.length) break;
          await Bun.sleep(10);
        }
        const r = runCli(["pair", "--pin", "4321"], env());
        expect(r.stderr).toBe("");
        expect(r.stdout).toContain("PIN entered for roth");
      });
      expect(result.ok).toBe(true);
      const list = JSON.parse(runCli(["pair", "list", "--json"], env()).stdout);
      expect(list).toHaveLength(1);
      expect(list[0].name).toBe("roth");
      expect((await client.httpsXml("/applist")).apps.length).toBeGreaterThan(0);
      const removed = runCli(["pair", "remove", String(list[0].id)], env());
      expect(removed.code).toBe(0);
      expect((await client.httpsXml("/applist")).status).toBe(401);
    } finally {
      keys.cleanup();
    }
  });

  test("stream sessions are listed and ended through /api/v1/sessions", async () => {
    const keys = tempDir("neuron-keys-");
    const socket = join(dir.path, "state", "api.sock");
    const api = (method: string, path: string, body?: unknown) =>
      fetch(`http://localhost/api/v1${path}`, { method, unix: socket, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
    try {
      const client = new GameStreamTestClient("127.0.0.1", base, base - 5, makeClientIdentity(keys.path), "SESSIONSTEST0001", "den");
      const paired = await client.pair("5555", async () => {
        for (let i = 0; i < 200; i++) {
          if (((await (await api("GET", "/pairing/pending")).json()) as unknown[]).length) break;
          await Bun.sleep(10);
        }
        expect((await api("POST", "/pairing/pin", { pin: "5555" })).status).toBe(200);
      });
      expect(paired.ok).toBe(true);
      expect(await (await api("GET", "/sessions")).json()).toEqual([]);
      const launch = await client.httpsXml("/launch", { appid: "1", mode: "1280x720x30", rikey: "0f".repeat(16), rikeyid: "42", localAudioPlayMode: "0", corever: "1" });
      expect(launch.status).toBe(200);
      const sessions = (await (await api("GET", "/sessions")).json()) as { id: string; appName: string; width: number; height: number; fps: number }[];
      expect(sessions).toHaveLength(1);
      expect(sessions[0]).toMatchObject({ appName: "Desktop", width: 1280, height: 720, fps: 30 });
      expect((await api("DELETE", `/sessions/${crypto.randomUUID()}`)).status).toBe(404);
      expect((await api("DELETE", "/sessions/not-a-uuid")).status).toBe(422);
      // the CLI over the same socket
      const cliList = runCli(["sessions", "list"], env());
      expect(cliList.code).toBe(0);
      expect(cliList.stdout).toContain(sessions[0]!.id);
      expect(cliList.stdout).toContain("den@127.0.0.1");
      expect(JSON.parse(runCli(["sessions", "show", sessions[0]!.id], env()).stdout)).toMatchObject({ id: sessions[0]!.id, state: "launched", client: { name: "den" } });
      expect(runCli(["sessions", "end", crypto.randomUUID()], env())).toMatchObject({ code: 1 });
      expect(runCli(["sessions", "end", "nope"], env()).code).toBe(2);
      // a launched session has no encoder yet: a clear refusal; bad arguments are usage errors
      const early = runCli(["sessions", "bitrate", sessions[0]!.id, "3000"], env());
      expect(early.code).toBe(1);
      expect(early.stderr).toContain("has no video running yet");
      for (const bad of [["sessions", "bitrate", sessions[0]!.id], ["sessions", "bitrate", sessions[0]!.id, "12.5"], ["sessions", "bitrate", sessions[0]!.id, "100"], ["sessions", "bitrate", "nope", "3000"], ["sessions", "bitrate", sessions[0]!.id, "3000", "more"]]) expect(runCli(bad, env()).code).toBe(2);
      expect(((await (await api("GET", `/sessions/${sessions[0]!.id}`)).json()) as { bitrateKbps: number | null }).bitrateKbps).toBeNull();
      expect((await api("DELETE", `/sessions/${sessions[0]!.id}`)).status).toBe(204);
      expect(await (await api("GET", "/sessions")).json()).toEqual([]);
      expect(runCli(["sessions"], env()).stdout).toBe("no stream sessions\n");
      const ended = JSON.parse(runCli(["sessions", "ended", "--json"], env()).stdout) as { id: string; reason: string }[];
      expect(ended[0]).toMatchObject({ id: sessions[0]!.id, reason: "ended-by-api" });
      expect((await client.http("/serverinfo")).fields.state).toBe("SUNSHINE_SERVER_FREE");
      const list = JSON.parse(runCli(["pair", "list", "--json"], env()).stdout) as { id: number; name: string }[];
      for (const p of list) runCli(["pair", "remove", String(p.id)], env());
    } finally {
      keys.cleanup();
    }
  });

  test("`pair grant` / `pair revoke` change what a second client may do; `pair list` shows it", async () => {
    const keys = tempDir("neuron-keys-");
    try {
      const pairAs = async (dirName: string, device: string, pin: string) => {
        const d = join(keys.path, dirName);
        await Bun.write(join(d, ".keep"), "");
        const c = new GameStreamTestClient("127.0.0.1", base, base - 5, makeClientIdentity(d), "0123456789ABCDEF", device);
        const r = await c.pair(pin, async () => {
          for (let i = 0; i < 200 && JSON.parse(runCli(["pair", "pending", "--json"], env()).stdout).length === 0; i++) await Bun.sleep(10);
          expect(runCli(["pair", "--pin", pin], env()).code).toBe(0);
        });
        expect(r.ok).toBe(true);
        return c;
      };
      await pairAs("a", "tv", "1111");
      const phone = await pairAs("b", "phone", "2222");
      const list = JSON.parse(runCli(["pair", "list", "--json"], env()).stdout) as { id: number; name: string; permissions: string[] }[];
      expect(list.map((p) => [p.name, p.permissions])).toEqual([
        ["tv", ["view", "keyboard", "mouse", "controller", "launch", "clipboard"]],
        ["phone", ["view"]],
      ]);
      const id = String(list[1]!.id);
      const launchQ = { appid: "1", mode: "1280x720x30", rikey: "0e".repeat(16), rikeyid: "1", localAudioPlayMode: "0" };
      expect((await phone.httpsXml("/launch", launchQ)).status).toBe(403);
      const granted = runCli(["pair", "grant", id, "launch", "keyboard,mouse"], env());
      expect(granted).toMatchObject({ code: 0, stderr: "" });
      expect(granted.stdout).toContain("granted launch, keyboard, mouse to client");
      expect((await phone.httpsXml("/launch", launchQ)).status).toBe(200);
      expect(runCli(["pair", "list"], env()).stdout).toMatch(/phone\s+\S+…\s+view,keyboard,mouse,launch/);
      expect(JSON.parse(runCli(["pair", "revoke", id, "launch", "--json"], env()).stdout)).toEqual({ id: Number(id), name: "phone", permissions: ["view", "keyboard", "mouse"] });
      expect((await phone.httpsXml("/launch", launchQ)).status).toBe(403);
      // bad input: a clear line, nothing changed
      const bad = runCli(["pair", "grant", id, "root"], env());
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/unknown permission "root"/);
      expect(runCli(["pair", "grant", id], env()).stderr).toMatch(/name a permission/);
      expect(runCli(["pair", "revoke", "x", "view"], env()).code).toBe(2);
      expect(runCli(["pair", "grant", "99999", "view"], env())).toMatchObject({ code: 1 });
      expect(JSON.parse(runCli(["pair", "list", "--json"], env()).stdout)[1].permissions).toEqual(["view", "keyboard", "mouse"]);
      const socket = join(dir.path, "state", "api.sock");
      await fetch("http://localhost/api/v1/gamestream/session", { method: "DELETE", unix: socket });
      for (const p of list) runCli(["pair", "remove", String(p.id)], env());
    } finally {
      keys.cleanup();
    }
  });

  test("pair CLI errors are one clear line", () => {
    const noPending = runCli(["pair", "--pin", "1234"], env());
    expect(noPending.code).toBe(1);
    expect(noPending.stderr).toMatch(/no client is waiting for a PIN/);
    const badPin = runCli(["pair", "--pin", "12a4"], env());
    expect(badPin.code).toBe(1);
    expect(badPin.stderr).toMatch(/4 digits/);
    expect(runCli(["pair", "remove", "999"], env()).stderr).toMatch(/not found/);
    expect(runCli(["pair", "frob"], env()).code).toBe(2);
    const notRunning = runCli(["pair", "list"], { NEURON_STATE_DIR: join(dir.path, "nothing-here") });
    expect(notRunning.code).toBe(1);
    expect(notRunning.stderr).toMatch(/service is not running/);
  });
});
