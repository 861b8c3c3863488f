/**
 * Structured logs: one JSON object per line under systemd (or when asked),
 * readable text on a TTY. Context fields (session / VM id) ride along with
 * every line of a child logger. Logs go to stderr; stdout belongs to command output.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level: LogLevel;
  format: "auto" | "json" | "text";
  write?: (line: string) => void;
}

export function createLogger(opts: LoggerOptions, context: Record<string, unknown> = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const json = opts.format === "json" || (opts.format === "auto" && !process.stderr.isTTY);
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < ORDER[opts.level]) return;
    const all = { ...context, ...fields };
    if (json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }, errorReplacer));
    } else {
      const extra = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v, errorReplacer)}`)
        .join(" ");
      write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? " " + extra : ""}`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(opts, { ...context, ...fields }),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** A logger that drops everything (one-shot commands that print their own output). */
export const silentLogger: Logger = createLogger({ level: "error", format: "json", write: () => {} });
