/**
 * Clipboard sync between the host desktop and one guest, text only.
 *
 * Host side: two configured commands (e.g. `wl-paste -n` / `wl-copy`,
 * `xclip -o` / `xclip -i`), polled. Guest side: clipboard_set requests and
 * clipboard_changed events. Loop suppression: the hash of the last value
 * moved in either direction is remembered; a change that equals it is an
 * echo of our own write and is not sent back.
 */
import { createHash } from "node:crypto";
import { execFile, firstLine } from "../exec.ts";
import type { Logger } from "../log.ts";
import { MAX_CLIPBOARD_TEXT, type ClipboardContent } from "./model.ts";

export interface HostClipboard {
  get(): Promise<string>;
  set(text: string): Promise<void>;
}

export function commandClipboard(getCommand: string[], setCommand: string[], timeoutMs = 5000): HostClipboard {
  return {
    async get() {
      const r = await execFile(getCommand, { timeoutMs });
      if (r.spawnError || r.code !== 0) throw new Error(`${getCommand[0]}: ${r.spawnError ?? (firstLine(r.stderr) || `exit ${r.code}`)}`);
      return r.stdout.length > MAX_CLIPBOARD_TEXT ? r.stdout.slice(0, MAX_CLIPBOARD_TEXT) : r.stdout;
    },
    async set(text) {
      const r = await execFile(setCommand, { timeoutMs, input: text });
      if (r.spawnError || r.code !== 0) throw new Error(`${setCommand[0]}: ${r.spawnError ?? (firstLine(r.stderr) || `exit ${r.code}`)}`);
    },
  };
}

/** What the sync needs of an agent connection. */
export interface ClipboardPeer {
  readonly state: string;
  request(command: "clipboard_set", data: ClipboardContent): Promise<unknown>;
  on(event: "clipboard_changed", fn: (c: ClipboardContent) => void): unknown;
  off(event: "clipboard_changed", fn: (c: ClipboardContent) => void): unknown;
}

const hash = (text: string) => createHash("sha256").update(text).digest("hex");

export class ClipboardSync {
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastHost: string | null = null;
  private lastSynced: string | null = null;
  private busy = false;
  /** Bumped around our own writes to the host clipboard: a poll that overlapped one discards what it read. */
  private hostGen = 0;
  private hostWrites = 0;
  /** Counters, for status and tests. */
  readonly stats = { toGuest: 0, toHost: 0, suppressed: 0, errors: 0 };
  private readonly onGuest = (c: ClipboardContent) => void this.fromGuest(c);

  constructor(
    private readonly peer: ClipboardPeer,
    private readonly host: HostClipboard,
    private readonly log: Logger,
    private readonly pollMs = 1000,
  ) {}

  /** True once the host clipboard has been read a first time (later changes are synced). */
  get primed(): boolean {
    return this.lastHost !== null;
  }

  start(): void {
    if (this.timer) return;
    this.peer.on("clipboard_changed", this.onGuest);
    this.timer = setInterval(() => void this.pollHost(), this.pollMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.peer.off("clipboard_changed", this.onGuest);
  }

  /** One host poll: a new host value goes to the guest unless it is our own echo. */
  async pollHost(): Promise<void> {
    if (this.busy || this.peer.state !== "connected") return;
    this.busy = true;
    try {
      const gen = this.hostGen;
      const text = await this.host.get();
      if (gen !== this.hostGen || this.hostWrites > 0) return;
      const h = hash(text);
      if (this.lastHost === null) {
        this.lastHost = h; // first look: the current content is not a change
        return;
      }
      if (h === this.lastHost) return;
      this.lastHost = h;
      if (h === this.lastSynced || text.length === 0) {
        this.stats.suppressed++;
        return;
      }
      // Recorded before the request: the guest's echo, should one come, must find it.
      this.lastSynced = h;
      await this.peer.request("clipboard_set", { mime: "text/plain", text });
      this.stats.toGuest++;
    } catch (err) {
      this.stats.errors++;
      this.log.warn("clipboard host→guest failed", { error: (err as Error).message });
    } finally {
      this.busy = false;
    }
  }

  private async fromGuest(c: ClipboardContent): Promise<void> {
    if (c.mime !== "text/plain") return; // host side carries text only
    const h = hash(c.text);
    if (h === this.lastSynced) {
      this.stats.suppressed++;
      return;
    }
    // Recorded before the write so a host poll racing with it sees an echo.
    this.lastSynced = h;
    this.lastHost = h;
    this.hostGen++;
    this.hostWrites++;
    try {
      await this.host.set(c.text);
      this.stats.toHost++;
    } catch (err) {
      this.stats.errors++;
      this.log.warn("clipboard guest→host failed", { error: (err as Error).message });
    } finally {
      this.hostGen++;
      this.hostWrites--;
    }
  }
}
