/**
 * The nvhttp endpoints stock Moonlight clients speak, transport-free: a request
 * (path, query, whether it came over TLS, the client certificate, addresses)
 * in, an XML (or PNG) reply out. server.ts feeds it from the HTTP and HTTPS
 * listeners. Clients are identified by their certificate only.
 */
import { networkInterfaces } from "node:os";
import type { AppsService } from "../apps/service.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { GameStreamCrypto } from "./crypto.ts";

import type { HostIdentity } from "./identity.ts";
import { loadBoxArt } from "./boxart.ts";
import { PairingError, type PairingManager } from "./pairing.ts";
import { LaunchQuery, ResumeQuery, SessionLimitError, type SessionStore } from "./sessions.ts";
import { xmlError, xmlReply, type XmlChild } from "./xml.ts";
import type { PairedClients } from "./clients.ts";
import { CODEC, type GameStreamPorts } from "./constants.ts";

/** The shared constants stay reachable here for existing importers; their home is constants.ts. */
export { CODEC } from "./constants.ts";
import type { PairingRow } from "../db/repos/pairings.ts";
import type { GsPermission } from "./permissions.ts";

export const APP_VERSION = "7.1.431.-1";
export const GFE_VERSION = "3.23.0.74";


export interface NvRequest {
  path: string;
  query: URLSearchParams;
  https: boolean;
  /** DER of the client certificate presented in the TLS handshake, if any. */
  peerCertDer: Uint8Array | null;
  localIp: string;
  remoteIp: string;
  /** Aborted when the client closes the connection (ends a PIN wait early). */
  signal?: AbortSignal;
}

export interface NvReply {
  status: number;
  contentType: string;
  body: string | Uint8Array;
}

export interface NvHttpDeps {
  identity: HostIdentity;
  crypto: GameStreamCrypto;
  pairing: PairingManager;
  sessions: SessionStore;
  apps: AppsService;
  clients: PairedClients;
  ports: GameStreamPorts;
  hostname: string;
  /** ServerCodecModeSupport: what the encoder really supports on this machine. */
  codecModeSupport: () => number;
  log: Logger;
  now?: () => number;
  /** A paired client removed itself (/unpair over HTTPS). */
  onClientUnpaired?: (row: PairingRow, address: string) => void;
}

const xml = (body: string, status = 200): NvReply => ({ status, contentType: "application/xml; charset=utf-8", body });

/**
 * How long after an unfinished pairing from an address that address's plain-HTTP /unpair is
 * taken as the client abandoning it (Moonlight sends one after every failed pairing phase and
 * expects no HTTP error there). Any other plain-HTTP /unpair is refused.
 */
export const UNPAIR_AFTER_PAIRING_MS = 60_000;
const OPEN_PAIRINGS_KEPT = 256;

/** The refusal of a plain-HTTP /unpair: an HTTP error (curl's --fail, moonlight-embedded) and status_code (XML-reading clients). */
export const UNPAIR_REFUSED =
  "this host does not unpair over plain HTTP, where it cannot tell which client asks: remove the pairing on the host (neuron-appliance pair remove ID, or DELETE /api/v1/pairings/{id})";

function macOf(ip: string): string {
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) if (i.address === ip && !i.internal) return i.mac;
  return "00:00:00:00:00:00";
}

/** Strips an IPv4-mapped IPv6 prefix (::ffff:1.2.3.4 → 1.2.3.4). */
export const plainIp = (ip: string) => ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");

export function createNvHttp(deps: NvHttpDeps) {
  const { identity, pairing, sessions, apps, clients, ports } = deps;
  const now = deps.now ?? Date.now;
  /** Addresses with a pairing that did not finish (last /pair request, ms): their /unpair ends it. */
  const openPairings = new Map<string, number>();

  function notePairing(ip: string, finished: boolean): void {
    openPairings.delete(ip);
    if (finished) return;
    openPairings.set(ip, now());
    for (const oldest of openPairings.keys()) {
      if (openPairings.size <= OPEN_PAIRINGS_KEPT) break;
      openPairings.delete(oldest);
    }
  }

  /**
   * /unpair. Over HTTPS the certificate names the client: it is removed. Over plain HTTP the
   * caller is unknown (stock clients all send the same uniqueid): after that address's
   * unfinished pairing it only ends that attempt (nothing was stored); otherwise it is refused
   * with an error the client reports, and every pairing stays.
   */
  function unpair(req: NvRequest, pairedFp: string | null): NvReply {
    if (req.https) {
      if (!pairedFp) return xml(xmlError(401, "unknown client certificate: not paired"), 401);
      const removed = clients.remove(pairedFp);
      deps.log.info("client unpaired itself", { fingerprint: pairedFp.slice(0, 16) });
      if (removed) deps.onClientUnpaired?.(removed, plainIp(req.remoteIp));
      return xml(xmlReply([]));
    }
    const ip = plainIp(req.remoteIp);
    const since = openPairings.get(ip);
    if (since !== undefined && now() - since <= UNPAIR_AFTER_PAIRING_MS) {
      openPairings.delete(ip);
      return xml(xmlReply([]));
    }
    deps.log.warn("unpair over plain HTTP refused", { address: ip });
    return xml(xmlError(403, UNPAIR_REFUSED), 403);
  }

  /**
   * state/currentgame as the asking client sees them: over HTTPS its own session (a client picks
   * resume vs launch by it, and another client's stream must not stop it from launching its own);
   * over HTTP, where the client is unknown, whether any session runs.
   */
  function serverInfo(req: NvRequest, pairedFp: string | null): XmlChild[] {
    const codecs = deps.codecModeSupport();
    const s = req.https ? (pairedFp ? sessions.ofClient(pairedFp) : null) : sessions.active;
    const localIp = plainIp(req.localIp);
    return [
      ["hostname", deps.hostname],
      ["appversion", APP_VERSION],
      ["GfeVersion", GFE_VERSION],
      ["uniqueid", identity.uniqueId],
      ["HttpsPort", ports.https],
      ["ExternalPort", ports.http],
      ["MaxLumaPixelsHEVC", codecs & CODEC.HEVC ? 1869449984 : 0],
      ["mac", req.https && pairedFp ? macOf(localIp) : "00:00:00:00:00:00"],
      ["LocalIP", localIp],
      ["ServerCodecModeSupport", codecs],
      ["PairStatus", pairedFp ? 1 : 0],
      ["currentgame", s ? s.appId : 0],
      ["state", s ? "SUNSHINE_SERVER_BUSY" : "SUNSHINE_SERVER_FREE"],
    ];
  }

  function sessionUrl(req: NvRequest, encrypted: boolean): string {
    const ip = plainIp(req.localIp);
    const host = ip.includes(":") ? `[${ip}]` : ip;
    return `${encrypted ? "rtspenc" : "rtsp"}://${host}:${ports.rtsp}`;
  }

  /** The answer to a client lacking a permission: an error root the client shows, with what to ask for. */
  function refused(fp: string, permission: GsPermission, what: string): NvReply {
    deps.log.warn("request refused: the client lacks the permission", { client: clients.nameOf(fp), fingerprint: fp.slice(0, 16), permission });
    return xml(xmlError(403, `${what}: this client lacks the ${permission} permission; the owner of the host can grant it (neuron-appliance pair grant ID ${permission})`, [["gamesession", 0]]));
  }

  function launch(req: NvRequest, fp: string): NvReply {
    if (!clients.allows(fp, "launch")) return refused(fp, "launch", "Launching apps is not allowed");
    const parsed = LaunchQuery.safeParse(Object.fromEntries(req.query));
    if (!parsed.success) return xml(xmlError(400, `invalid launch request: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`));
    const q = parsed.data;
    // Over the limit: 503 with a message clients show as is (a launch by a client that streams already replaces its own session).
    if (sessions.wouldExceed(fp)) {
      deps.log.warn("launch refused: session limit reached", { client: fp.slice(0, 16), limit: sessions.maxSessions });
      return xml(xmlError(503, new SessionLimitError(sessions.maxSessions).message, [["gamesession", 0]]));
    }
    let app;
    try {
      app = apps.get(q.appid);
    } catch (err) {
      if (err instanceof AppError && err.status === 404) return xml(xmlError(404, `no app with id ${q.appid}`));
      throw err;
    }
    const session = sessions.start({
      appId: app.id,
      appName: app.name,
      appKind: app.kind,
      vmName: app.vmName,
      width: q.mode.width,
      height: q.mode.height,
      fps: q.mode.fps,
      riKey: Uint8Array.from(Buffer.from(q.rikey, "hex")),
      riKeyId: q.rikeyid | 0,
      localAudioPlayMode: q.localAudioPlayMode,
      surroundAudioInfo: q.surroundAudioInfo ?? 0x30002,
      remoteControllersBitmap: q.remoteControllersBitmap ?? 0,
      gcmap: q.gcmap ?? 0,
      hdr: q.hdrMode === 1,
      encryptedRtsp: q.corever !== undefined,
      clientFingerprint: fp,
      clientName: clients.nameOf(fp),
      clientUniqueId: q.uniqueid ?? null,
      clientAddress: plainIp(req.remoteIp),
    });
    deps.log.info("session launched", { session: session.id, app: app.name, client: session.clientName, address: session.clientAddress, mode: `${session.width}x${session.height}x${session.fps}`, sessions: sessions.size });
    return xml(xmlReply([["sessionUrl0", sessionUrl(req, session.encryptedRtsp)], ["gamesession", 1]]));
  }

  function resume(req: NvRequest, fp: string): NvReply {
    // view is enough to resume (watch) the client's own session; input needs its own permissions
    if (!clients.allows(fp, "view")) return refused(fp, "view", "Streaming is not allowed");
    const parsed = ResumeQuery.safeParse(Object.fromEntries(req.query));
    if (!parsed.success) return xml(xmlError(400, `invalid resume request: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`));
    const own = sessions.ofClient(fp);
    const s = own ? sessions.rekey(own, Uint8Array.from(Buffer.from(parsed.data.rikey, "hex")), parsed.data.rikeyid | 0) : null;
    if (!s) return xml(xmlError(503, "no app is running for this client"));
    s.clientAddress = plainIp(req.remoteIp);
    deps.log.info("session resumed", { session: s.id, app: s.appName });
    return xml(xmlReply([["sessionUrl0", sessionUrl(req, parsed.data.corever !== undefined)], ["resume", 1]]));
  }

  function appList(): NvReply {
    return xml(
      xmlReply(
        apps.list().map((a): XmlChild => [
          "App",
          [
            ["IsHdrSupported", 0],
            ["AppTitle", a.name],
            ["ID", a.id],
          ],
        ]),
      ),
    );
  }

  function appAsset(req: NvRequest): NvReply {
    const id = Number(req.query.get("appid"));
    if (!Number.isSafeInteger(id) || id < 1) return xml(xmlError(400, "invalid appid"));
    let path: string | null;
    try {
      path = apps.get(id).boxArtPath;
    } catch {
      return xml(xmlError(404, `no app with id ${id}`));
    }
    return { status: 200, contentType: "image/png", body: loadBoxArt(path).png };
  }

  return async function handle(req: NvRequest): Promise<NvReply> {
    const pairedFp = req.https && req.peerCertDer ? clients.match(req.peerCertDer) : null;
    if (pairedFp) clients.seen(pairedFp);
    switch (req.path) {
      case "/serverinfo":
        return xml(xmlReply(serverInfo(req, pairedFp)));
      case "/pair": {
        if (req.https && req.query.get("phrase") === "pairchallenge") return xml(xmlReply([["paired", pairedFp ? 1 : 0]], pairedFp ? 200 : 401, pairedFp ? undefined : "unknown client certificate"));
        if (req.https) return xml(xmlError(400, "pairing phases 1–4 run over HTTP"));
        const ip = plainIp(req.remoteIp);
        try {
          const children = await pairing.handle(req.query, { remoteIp: ip, signal: req.signal });
          notePairing(ip, req.query.has("clientpairingsecret") && children.some(([n, v]) => n === "paired" && v === 1));
          return xml(xmlReply(children));
        } catch (err) {
          notePairing(ip, false);
          if (err instanceof PairingError) return xml(xmlError(err.statusCode, err.message, [["paired", 0]]));
          throw err;
        }
      }
      case "/unpair":
        // a plain-HTTP /unpair right after a failed pairing phase ends that attempt (a wrong PIN, as stock Moonlight reports it)
        if (!req.https) pairing.abandon(plainIp(req.remoteIp));
        return unpair(req, pairedFp);
    }
    if (!req.https) return xml(xmlError(404, `${req.path} is not served over HTTP`));
    if (!pairedFp) return xml(xmlError(401, "unknown client certificate: pair first"));
    switch (req.path) {
      case "/applist":
        return clients.allows(pairedFp, "view") ? appList() : refused(pairedFp, "view", "Listing apps is not allowed");
      case "/appasset":
        return clients.allows(pairedFp, "view") ? appAsset(req) : refused(pairedFp, "view", "Box art is not allowed");
      case "/launch":
        return launch(req, pairedFp);
      case "/resume":
        return resume(req, pairedFp);
      case "/cancel": {
        // the calling client's session only
        const own = sessions.ofClient(pairedFp);
        const ended = own ? sessions.end(own, "cancelled") : null;
        if (ended) deps.log.info("session cancelled", { session: ended.id });
        return xml(xmlReply([["cancel", 1]]));
      }
      default:
        return xml(xmlError(404, `unknown endpoint ${req.path}`));
    }
  };
}
export type NvHttpHandler = ReturnType<typeof createNvHttp>;
