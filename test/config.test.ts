import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, envName, loadConfig } from "../src/config.ts";
import { tempDir } from "./helpers/env.ts";

const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

function configFile(content: string): string {
  const d = tempDir();
  dirs.push(d);
  const file = join(d.path, "config.json");
  writeFileSync(file, content);
  return file;
}

describe("config", () => {
  test("defaults: loopback API on 8547, paths derived from the state dir", () => {
    const c = loadConfig({ configPath: null, env: {}, flags: { stateDir: "/srv/neuron" } });
    expect(c.host).toBe("127.0.0.1");
    expect(c.port).toBe(8547);
    expect(c.dbPath).toBe("/srv/neuron/neuron.db");
    expect(c.socketPath).toBe("/srv/neuron/api.sock");
    expect(c.root).toBe("/");
    expect(c.bin.virsh).toBe("virsh");
    expect(c.gamestreamPort).toBe(47989);
    expect(c.spiceDir).toBe("/var/lib/neuron-appliance-spice");
    expect(c.adminGroup).toBe("neuron");
  });

  test("precedence: file < env < flags, nested keys too", () => {
    const file = configFile(JSON.stringify({ port: 1000, host: "127.0.0.2", stateDir: "/a", bin: { virsh: "/opt/virsh" } }));
    const env = { NEURON_PORT: "2000", NEURON_STATE_DIR: "/b", NEURON_BIN_QEMU_IMG: "/opt/qemu-img" };
    const c = loadConfig({ configPath: file, env, flags: { stateDir: "/c" } });
    expect(c.host).toBe("127.0.0.2"); // file only
    expect(c.port).toBe(2000); // env over file
    expect(c.stateDir).toBe("/c"); // flag over env
    expect(c.bin.virsh).toBe("/opt/virsh");
    expect(c.bin.qemuImg).toBe("/opt/qemu-img");
    expect(c.configFile).toBe(file);
  });

  test("env names are derived from the schema keys", () => {
    expect(envName(["stateDir"])).toBe("NEURON_STATE_DIR");
    expect(envName(["bin", "qemuImg"])).toBe("NEURON_BIN_QEMU_IMG");
    const c = loadConfig({ configPath: null, env: { NEURON_HOST: "0.0.0.0", NEURON_GAMESTREAM_PORT: "48000" } });
    expect(c.host).toBe("0.0.0.0");
    expect(c.gamestreamPort).toBe(48000);
  });

  test("relative paths resolve against cwd", () => {
    const c = loadConfig({ configPath: null, env: {}, flags: { stateDir: "state", root: "fixture" }, cwd: "/work/x" });
    expect(c.stateDir).toBe("/work/x/state");
    expect(c.root).toBe("/work/x/fixture");
  });

  const refusals: [string, () => unknown, RegExp][] = [
    ["a port that is not a number (env)", () => loadConfig({ configPath: null, env: { NEURON_PORT: "eighty" } }), /port: .*expected number.*env NEURON_PORT/],
    ["a port out of range (flag)", () => loadConfig({ configPath: null, env: {}, flags: { port: "70000" } }), /port: .*65535.*command-line flag/],
    ["an unknown key in the file", () => loadConfig({ configPath: configFile('{"prot": 1}'), env: {} }), /Unrecognized key.*prot|prot/],
    ["an admin group that is no group name (env)", () => loadConfig({ configPath: null, env: { NEURON_ADMIN_GROUP: "wheel users" } }), /adminGroup: a group name.*env NEURON_ADMIN_GROUP/],
    ["invalid JSON in the file", () => loadConfig({ configPath: configFile("{port: 1"), env: {} }), /invalid JSON/],
    ["a file that holds an array", () => loadConfig({ configPath: configFile("[1]"), env: {} }), /must hold a JSON object/],
    ["a GameStream base port with no room for HTTPS (base - 5)", () => loadConfig({ configPath: null, env: { NEURON_GAMESTREAM_PORT: "0" } }), /gamestreamPort: must leave room/],
    ["a GameStream base port with no room for RTSP (base + 21)", () => loadConfig({ configPath: null, env: { NEURON_GAMESTREAM_PORT: "65530" } }), /gamestreamPort: must leave room/],
    ["a wrong enum value", () => loadConfig({ configPath: null, env: { NEURON_LOG_FORMAT: "xml" } }), /logFormat/],
    ["an empty path", () => loadConfig({ configPath: configFile('{"stateDir": ""}'), env: {} }), /stateDir: must not be empty.*config file/],
    ["a wrong nested type", () => loadConfig({ configPath: configFile('{"bin": {"virsh": 5}}'), env: {} }), /bin\.virsh/],
    ["a missing explicit config file", () => loadConfig({ configPath: "/nonexistent/neuron.json", env: {} }), /not found/],
  ];
  for (const [name, fn, message] of refusals) {
    test(`refuses ${name}, naming the field and the reason`, () => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
    });
  }
});
