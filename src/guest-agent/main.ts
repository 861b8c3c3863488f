/**
 * neuron-agent: the NeuronOS guest agent, run inside the VM as a service.
 *
 *   neuron-agent [--config FILE] [--port PATH] [--cert-dir DIR | --insecure-no-tls]
 *   neuron-agent export-frames ...   (frame-export.ts: this guest's screen to the host over vsock)
 *
 * Opens the virtio-serial port org.neuronos.agent.0 and serves the host's
 * requests (PROTOCOL.md in src/guest/) until killed.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "../log.ts";
import type { TlsMaterial } from "../guest/certs.ts";
import { defaultPort, loadAgentConfig, readAgentConfigFile } from "./config.ts";
import { AGENT_VERSION, OsBackend } from "./os.ts";
import { runPortLoop } from "./port.ts";
import { AgentServer } from "./server.ts";
import { GamepadHub } from "./gamepad.ts";
import { defaultGamepadDriver } from "./gamepad-uinput.ts";
import { defaultHidDriver, HidHub } from "./uhid.ts";

const DEFAULT_CONFIG = process.platform === "win32" ? "C:\\ProgramData\\NeuronOS\\agent.json" : "/etc/neuron-agent/config.json";
const DEFAULT_CERTS = process.platform === "win32" ? "C:\\ProgramData\\NeuronOS\\agent-certs" : "/etc/neuron-agent/certs";

export function loadTls(dir: string): TlsMaterial {
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { ca: read("ca.crt"), cert: read("guest.crt"), key: read("guest.key") };
}

export async function agentMain(argv: string[]): Promise<number> {
  if (argv[0] === "export-frames") return (await import("./frame-export.ts")).exportFramesMain(argv.slice(1));
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      port: { type: "string" },
      "cert-dir": { type: "string" },
      "insecure-no-tls": { type: "boolean" },
      version: { type: "boolean" },
    },
    strict: true,
  });
  if (values.version) {
    process.stdout.write(`neuron-agent ${AGENT_VERSION}\n`);
    return 0;
  }
  const log = createLogger({ level: "info", format: "auto" });
  const file = values.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : null);
  const raw = (file ? readAgentConfigFile(file) : {}) as Record<string, unknown>;
  const config = loadAgentConfig({
    certDir: DEFAULT_CERTS,
    ...raw,
    ...(values.port ? { port: values.port } : {}),
    ...(values["cert-dir"] ? { certDir: values["cert-dir"] } : {}),
    ...(values["insecure-no-tls"] ? { certDir: null } : {}),
  });
  const tls = config.certDir ? loadTls(config.certDir) : null;
  if (!tls) log.warn("running without TLS: any process with access to the port on the host side can talk to this agent");
  const server = new AgentServer({ backend: new OsBackend(config), tls, log, maxFrameBytes: config.maxFrameBytes, pollMs: config.pollMs, usersDir: config.usersDir, gamepads: new GamepadHub(defaultGamepadDriver()), hid: new HidHub(defaultHidDriver()) });
  server.start();
  // The port may show up after the agent starts (driver loading, hot-plug): wait for it.
  let port = config.port ?? defaultPort(process.platform);
  for (let waited = 0; process.platform !== "win32" && !existsSync(port); waited++) {
    if (waited === 0) log.warn("agent port not present yet; waiting", { port });
    await Bun.sleep(1000);
    port = config.port ?? defaultPort(process.platform);
  }
  await runPortLoop({ path: port, log, onSession: (s) => server.serve(s) });
  return 0;
}

if (import.meta.main) {
  agentMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`neuron-agent: error: ${err.message}\n`);
      process.exit(1);
    },
  );
}
