/**
 * The audio port (UDP base + 11) shared by every session's audio stream: one socket,
 * each client's pings (its session's X-SS-Ping-Payload ‖ BE32 count) routed to that
 * session's stream, which learns the client's address from them and sends through the
 * same socket. A legacy 4-byte "PING" goes to the one stream whose client launched from
 * the sender's address, and nowhere when that is not exactly one (or the address is unknown). Anything else is
 * counted and ignored (logged a bounded number of times).
 */
import { createSocket, type Socket } from "node:dgram";
import type { Logger } from "../../log.ts";

export const AUDIO_PING_BYTES = 20;

export interface AudioPortListener {
  /** The session's audio X-SS-Ping-Payload (16 characters). */
  pingPayload: string;
  /** Where the session was launched from ("" when unknown: then no legacy ping is its). */
  clientAddress: string;
  onPing(address: string, port: number): void;
}

export class AudioPort {
  private readonly listeners = new Map<string, AudioPortListener>();
  private rejected = 0;
  private constructor(
    private readonly socket: Socket,
    readonly port: number,
    private readonly log: Logger,
  ) {
    socket.on("message", (msg, rinfo) => this.onDatagram(msg, rinfo.address, rinfo.port));
    socket.on("error", (err) => log.warn("audio socket error", { error: err.message }));
  }

  static async open(host: string, port: number, log: Logger): Promise<AudioPort> {
    const socket = createSocket({ type: "udp4", reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new AudioPort(socket, socket.address().port, log);
  }

  /** Routes the pings that carry `l.pingPayload` to `l`; returns the function that stops it. */
  register(l: AudioPortListener): () => void {
    if (this.listeners.has(l.pingPayload)) throw new Error("ping payload already registered");
    this.listeners.set(l.pingPayload, l);
    return () => {
      if (this.listeners.get(l.pingPayload) === l) this.listeners.delete(l.pingPayload);
    };
  }

  get streams(): number {
    return this.listeners.size;
  }

  get rejectedDatagrams(): number {
    return this.rejected;
  }

  send(packet: Uint8Array, port: number, address: string): void {
    this.socket.send(packet, port, address);
  }

  private onDatagram(msg: Buffer, address: string, port: number): void {
    let target: AudioPortListener | undefined;
    if (msg.length === AUDIO_PING_BYTES) target = this.listeners.get(msg.toString("latin1", 0, 16));
    else if (msg.length === 4 && msg.toString("latin1") === "PING") {
      const fromIp = [...this.listeners.values()].filter((l) => l.clientAddress === address);
      if (fromIp.length === 1) target = fromIp[0];
    }
    if (!target) {
      this.rejected++;
      if (this.rejected <= 10 || this.rejected % 1000 === 0)
        this.log.warn("audio port: datagram that is no ping of a live session ignored", { from: `${address}:${port}`, bytes: msg.length, rejected: this.rejected });
      return;
    }
    target.onPing(address, port);
  }

  close(): Promise<void> {
    this.listeners.clear();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
