/**
 * A tiny QEMU guest (TCG, busybox initramfs) running the compiled guest agent
 * on the virtio-serial port org.neuronos.agent.0, with the host's AgentClient
 * connected to it over mutual TLS. Shared by the end-to-end tests that need
 * the agent inside a real guest.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureAgentCertificates, type AgentCertificates } from "../../src/guest/certs.ts";
import { AgentClient } from "../../src/guest/client.ts";
import { silentLogger } from "../../src/log.ts";
import { BUN, REPO_ROOT } from "../helpers/env.ts";
import { waitFor } from "./agent-env.ts";
import { buildInitramfs, qemuArgs, type Kernel } from "./tiny-guest.ts";

type GuestFiles = Parameters<typeof buildInitramfs>[2];

export interface AgentGuest {
  vm: Bun.Subprocess;
  client: AgentClient;
  certs: AgentCertificates;
  /** The host side of the agent port (QEMU's chardev socket). */
  socketPath: string;
  consoleLog: string;
  /** Stops the client and QEMU (the work directory is the caller's). */
  stop(): Promise<void>;
}

/** A host client for the guest's agent port, with the retry pace the guest tests use. */
export function guestAgentClient(socketPath: string, certs: AgentCertificates, connectTimeoutMs: number): AgentClient {
  return new AgentClient({ socketPath, tls: certs.host, log: silentLogger, requestTimeoutMs: 30_000, connectTimeoutMs, backoff: { initialMs: 200, maxMs: 1000 } });
}

/**
 * Builds the agent, boots the guest with `files` and the agent's config, runs
 * `init` (shell lines) and then the agent, and resolves once the host client
 * is connected; a boot that fails carries the console's tail in its error.
 */
export async function bootAgentGuest(opts: {
  work: string;
  kernel: Kernel;
  config: unknown;
  files?: GuestFiles;
  init?: string[];
  /** More QEMU arguments (devices beside the agent's port). */
  qemu?: string[];
}): Promise<AgentGuest> {
  const socketPath = join(opts.work, "agent.sock");
  const consoleLog = join(opts.work, "console.log");
  const certs = await ensureAgentCertificates({ stateDir: opts.work, openssl: "openssl" }, "tiny");
  const agentBin = join(opts.work, "neuron-agent");
  const build = Bun.spawnSync([BUN, "build", "--compile", join(REPO_ROOT, "src", "guest-agent", "main.ts"), "--outfile", agentBin], { stderr: "pipe", stdout: "pipe" });
  if (build.exitCode !== 0) throw new Error(`agent build failed: ${build.stderr.toString()}`);
  const initramfs = buildInitramfs(
    opts.work,
    opts.kernel,
    {
      "agent/neuron-agent": { host: agentBin, libs: true },
      "agent/config.json": { text: JSON.stringify(opts.config) },
      "agent/certs/ca.crt": { text: certs.guest.ca },
      "agent/certs/guest.crt": { text: certs.guest.cert },
      "agent/certs/guest.key": { text: certs.guest.key, mode: 0o600 },
      ...opts.files,
    },
    [...(opts.init ?? []), "HOME=/root TMPDIR=/tmp /agent/neuron-agent --config /agent/config.json"].join("\n"),
  );
  const vm = Bun.spawn(
    qemuArgs(opts.kernel, initramfs, consoleLog, [
      "-device", "virtio-serial-pci,id=vser0",
      "-chardev", `socket,id=agent0,path=${socketPath},server=on,wait=off`,
      "-device", "virtserialport,bus=vser0.0,chardev=agent0,name=org.neuronos.agent.0",
      ...(opts.qemu ?? []),
    ]),
    { stdout: "ignore", stderr: "pipe" },
  );
  const guest: AgentGuest = {
    vm,
    client: guestAgentClient(socketPath, certs, 4_000),
    certs,
    socketPath,
    consoleLog,
    async stop() {
      guest.client.stop();
      vm.kill();
      await vm.exited;
    },
  };
  try {
    await waitFor(() => existsSync(socketPath), 10_000, "QEMU's chardev socket");
    guest.client.start();
    const started = Date.now();
    await waitFor(() => {
      if (vm.exitCode !== null) throw new Error(`QEMU exited with ${vm.exitCode}`);
      return guest.client.state === "connected";
    }, 110_000, `the guest agent (console: ${consoleLog})`).catch((err) => {
      throw new Error(`${(err as Error).message}\n${existsSync(consoleLog) ? readFileSync(consoleLog, "utf8").slice(-3000) : ""}`);
    });
    console.log(`guest agent connected ${((Date.now() - started) / 1000).toFixed(1)} s after QEMU started (TCG)`);
  } catch (err) {
    await guest.stop();
    throw err;
  }
  return guest;
}
