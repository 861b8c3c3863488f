/**
 * Runs an external program (virsh, qemu-img, modprobe, ...) with a deadline.
 * Arguments are passed as an argv array — never through a shell.
 */
export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the program could not be started at all (not found, not executable). */
  spawnError?: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string | Uint8Array;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export async function execFile(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  let proc: Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn(argv, {
      stdin: opts.input === undefined ? "ignore" : "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: opts.env as Record<string, string> | undefined,
      cwd: opts.cwd,
    });
  } catch (err) {
    return { code: null, stdout: "", stderr: "", timedOut: false, spawnError: (err as Error).message };
  }
  if (opts.input !== undefined && proc.stdin && typeof proc.stdin !== "number") {
    proc.stdin.write(opts.input);
    await proc.stdin.end();
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs ?? 30_000);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code: timedOut ? null : code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** First non-empty line of a program's error output, for one-line messages. */
export function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? ""
  );
}
