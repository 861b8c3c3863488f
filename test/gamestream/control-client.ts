/**
 * A control-stream test peer written from the spec: libenet (ffi/enet.ts) as the client side,
 * the encrypted envelope with the client IV ('C','C'), messages from the host opened with 'H','C'.
 */
import { NativeCrypto } from "../../ffi/crypto.ts";
import { EnetHost, type EnetPeer } from "../../ffi/enet.ts";
import { ControlType, openControl, sealControl, type ControlMessage } from "../../src/gamestream/control/envelope.ts";
import { CONTROL_CHANNELS } from "../../src/gamestream/control/server.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import type { RtspCipher } from "../../src/gamestream/rtsp/record.ts";

const native = NativeCrypto.load();
const gsCrypto = gameStreamCrypto(native);

export class ControlTestClient {
  private readonly host = new EnetHost({ peers: 1, channels: CONTROL_CHANNELS });
  private peer: EnetPeer | null = null;
  private readonly cipher: RtspCipher;
  private timer: ReturnType<typeof setInterval>;
  seq = 0;
  connected = false;
  disconnected = false;
  /** Messages from the host that opened; raw ones that did not. */
  readonly received: ControlMessage[] = [];
  readonly undecodable: Uint8Array[] = [];

  constructor(key: Uint8Array) {
    this.cipher = gsCrypto.aesGcm(key);
    this.timer = setInterval(() => this.pump(), 2);
  }

  private pump(): void {
    if (!this.host.open) return;
    for (let i = 0; i < 256; i++) {
      const ev = this.host.service(0);
      if (!ev) return;
      if (ev.type === "connect") this.connected = true;
      else if (ev.type === "disconnect") this.disconnected = true;
      else if (ev.type === "receive") {
        const r = openControl(this.cipher, ev.data, "host");
        if (r.ok) this.received.push({ type: r.message.type, payload: r.message.payload.slice() });
        else this.undecodable.push(ev.data);
      }
    }
  }

  /** Connects with `connectData`; resolves true when the host accepts, false when it refuses or the wait ends. */
  async connect(port: number, connectData: number, timeoutMs = 3000): Promise<boolean> {
    this.peer = this.host.connect("127.0.0.1", port, CONTROL_CHANNELS, connectData);
    const end = Date.now() + timeoutMs;
    while (!this.connected && !this.disconnected && Date.now() < end) await Bun.sleep(5);
    if (!this.connected) return false;
    // The host drops a refused peer right after ENet's handshake: give that a moment to arrive.
    await Bun.sleep(100);
    return !this.disconnected;
  }

  /** Seals and sends one message (sequence numbers count up unless `seq` is given). */
  send(type: number, payload: Uint8Array = new Uint8Array(0), opts: { seq?: number; channel?: number; reliable?: boolean } = {}): Uint8Array {
    const seq = opts.seq ?? this.seq++;
    const bytes = sealControl(this.cipher, seq, { type, payload }, "client");
    this.sendRaw(bytes, opts.channel, opts.reliable);
    return bytes;
  }

  sendRaw(bytes: Uint8Array, channel = 0, reliable = true): void {
    if (this.peer === null) throw new Error("not connected");
    if (!this.host.send(this.peer, channel, bytes, reliable)) throw new Error("ENet refused the packet");
    this.host.flush();
  }

  ping(): void {
    this.send(ControlType.PING, new Uint8Array(0), { channel: 1 });
  }

  async waitFor(cond: () => boolean, ms = 3000, what = "condition"): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await Bun.sleep(5);
    }
  }

  close(): void {
    clearInterval(this.timer);
    if (this.peer !== null && this.connected && !this.disconnected) {
      this.host.disconnectNow(this.peer);
    }
    this.host.close();
    this.cipher.close();
  }
}
