/**
 * Supervises the looking-glass-client viewer of a VM when the user asks for it:
 * start, restart on crash with exponential backoff, stop. Only the process it
 * started is ever signalled, by its PID.
 */
import { AppError } from "../errors.ts";

export type SupervisorState = "stopped" | "running" | "backoff";

export interface SupervisorEvent {
  kind: "started" | "exited" | "stopped";
  pid: number | null;
  exitCode?: number | null;
  /** Delay before the next start, after a crash. */
  restartInMs?: number;
}

export interface SupervisorOptions {
  argv: string[];
  /** First restart delay; doubles per crash up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A run this long resets the backoff. */
  stableMs?: number;
  onEvent?: (e: SupervisorEvent) => void;
}

/** argv of the viewer for one VM: its own config file (shmFile, title). */
export function lookingGlassClientArgv(bin: string, iniPath: string): string[] {
  return [bin, "-C", iniPath];
}

export class ProcessSupervisor {
  private proc: ReturnType<typeof Bun.spawn> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private backoff: number;
  private wanted = false;
  state: SupervisorState = "stopped";
  restarts = 0;

  constructor(private readonly opts: SupervisorOptions) {
    this.backoff = opts.minBackoffMs ?? 500;
  }

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  start(): void {
    if (this.wanted) return;
    const bin = this.opts.argv[0];
    if (!bin || (!bin.includes("/") && !Bun.which(bin)))
      throw new AppError("LG_CLIENT_MISSING", `${bin ?? "(none)"} is not installed: install looking-glass-client to view the VM`, { status: 409 });
    this.wanted = true;
    this.spawn();
  }

  private spawn(): void {
    this.timer = null;
    if (!this.wanted) return;
    const startedAt = Date.now();
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn(this.opts.argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    } catch {
      this.scheduleRestart(null, startedAt);
      return;
    }
    this.proc = proc;
    this.state = "running";
    this.opts.onEvent?.({ kind: "started", pid: proc.pid });
    void proc.exited.then((code) => {
      if (this.proc !== proc) return;
      this.proc = null;
      if (!this.wanted) return;
      this.scheduleRestart(code, startedAt);
    });
  }

  private scheduleRestart(code: number | null, startedAt: number): void {
    const max = this.opts.maxBackoffMs ?? 30_000;
    if (Date.now() - startedAt >= (this.opts.stableMs ?? 10_000)) this.backoff = this.opts.minBackoffMs ?? 500;
    const delay = this.backoff;
    this.backoff = Math.min(max, this.backoff * 2);
    this.restarts++;
    this.state = "backoff";
    this.opts.onEvent?.({ kind: "exited", pid: null, exitCode: code, restartInMs: delay });
    this.timer = setTimeout(() => this.spawn(), delay);
  }

  /** Stops supervising; the running viewer gets SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    this.wanted = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const proc = this.proc;
    this.proc = null;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
      if (!done) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    }
    this.state = "stopped";
    this.opts.onEvent?.({ kind: "stopped", pid: proc?.pid ?? null });
  }
}
