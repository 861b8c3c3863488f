/**
 * The agent protocol's messages (PROTOCOL.md) as zod schemas, shared by the
 * host client and the in-guest service. Everything read from the other side
 * goes through these before use.
 */
import { z } from "zod";
import { GamepadAttach, GamepadAttached, GamepadDetach, GamepadRumble, GamepadState } from "./gamepad-model.ts";
import { HidCreate, HidCreated, HidDestroy, HidInput, HidOutput } from "./hid-model.ts";

export const PROTOCOL_VERSION = 1;
export const AGENT_PORT_NAME = "org.neuronos.agent.0";
export const QGA_PORT_NAME = "org.qemu.guest_agent.0";

/** Largest clipboard text, in UTF-16 code units (fits a 4 MiB frame after JSON escaping). */
export const MAX_CLIPBOARD_TEXT = 1024 * 1024;
/** Largest PNG (clipboard image or screenshot) as base64 characters (~2.25 MiB of PNG). */
export const MAX_PNG_BASE64 = 3 * 1024 * 1024;

export const COMMANDS = [
  "hello",
  "ping",
  "get_info",
  "set_resolution",
  "launch_app",
  "clipboard_get",
  "clipboard_set",
  "screenshot",
  "shutdown",
  "gamepad_attach",
  "gamepad_state",
  "gamepad_detach",
  "hid_create",
  "hid_input",
  "hid_destroy",
  "fs_profiles",
  "fs_list",
  "fs_read",
  "fs_hash",
] as const;
export type CommandName = (typeof COMMANDS)[number];
export const CommandName = z.enum(COMMANDS);

export const EVENTS = ["clipboard_changed", "resolution_changed", "app_exited", "gamepad_rumble", "hid_output"] as const;
export type EventName = (typeof EVENTS)[number];

const requestId = z.string().min(1).max(64);
const base64 = z.string().max(MAX_PNG_BASE64).regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");

// ---- envelopes ----

export const RequestEnvelope = z.strictObject({
  type: z.string().min(1).max(64),
  request_id: requestId,
  data: z.unknown().optional(),
});
export type RequestEnvelope = z.infer<typeof RequestEnvelope>;

export const ResponseEnvelope = z.strictObject({
  request_id: requestId,
  success: z.boolean(),
  data: z.unknown().optional(),
  error: z.strictObject({ code: z.string().max(64), message: z.string().max(4096) }).nullable().optional(),
});
export type ResponseEnvelope = z.infer<typeof ResponseEnvelope>;

export const EventEnvelope = z.strictObject({
  type: z.enum(EVENTS),
  data: z.unknown().optional(),
});
export type EventEnvelope = z.infer<typeof EventEnvelope>;

// ---- command payloads ----

export const Display = z.object({
  name: z.string().max(256),
  width: z.number().int().min(1).max(16384),
  height: z.number().int().min(1).max(16384),
  primary: z.boolean(),
});
export type Display = z.infer<typeof Display>;

export const HelloRequest = z.strictObject({ protocol: z.number().int().min(1).max(1000), host: z.string().max(256) });
export const HelloResponse = z.object({
  protocol: z.number().int(),
  agent_version: z.string().max(64),
  os: z.string().max(64),
});
export type HelloResponse = z.infer<typeof HelloResponse>;

export const PingResponse = z.object({ pong: z.literal(true), time: z.number() });

export const GuestInfo = z.object({
  protocol: z.number().int(),
  agent_version: z.string().max(64),
  hostname: z.string().max(256),
  os: z.object({
    family: z.enum(["linux", "windows", "other"]),
    name: z.string().max(256),
    version: z.string().max(256),
    kernel: z.string().max(256),
    arch: z.string().max(64),
  }),
  displays: z.array(Display).max(16),
});
export type GuestInfo = z.infer<typeof GuestInfo>;

/** Display names as the guest OS reports them (Virtual-1, HDMI-A-1, \\.\DISPLAY1); no quotes or spaces. */
const displayName = z.string().min(1).max(256).regex(/^[A-Za-z0-9_.:\\-]+$/, "letters, digits and _ . : \\ - only");

export const SetResolution = z.strictObject({
  width: z.number().int().min(320).max(16384),
  height: z.number().int().min(200).max(16384),
  display: displayName.optional(),
});
export type SetResolution = z.infer<typeof SetResolution>;

export const LaunchApp = z.strictObject({
  path: z.string().min(1).max(4096),
  args: z.array(z.string().max(4096)).max(64).default([]),
  cwd: z.string().min(1).max(4096).optional(),
});
export type LaunchApp = z.input<typeof LaunchApp>;
export const LaunchResult = z.object({ pid: z.number().int().min(1) });

export const ClipboardContent = z.discriminatedUnion("mime", [
  z.strictObject({ mime: z.literal("text/plain"), text: z.string().max(MAX_CLIPBOARD_TEXT) }),
  z.strictObject({ mime: z.literal("image/png"), data: base64 }),
  z.strictObject({ mime: z.literal("empty") }),
]);
export type ClipboardContent = z.infer<typeof ClipboardContent>;

export const Screenshot = z.object({ mime: z.literal("image/png"), data: base64 });
export const ShutdownRequest = z.strictObject({ mode: z.enum(["poweroff", "reboot"]).default("poweroff") });

export const AppExited = z.object({ pid: z.number().int(), code: z.number().int().nullable(), signal: z.string().nullable() });

const FsPath = z.string().min(1).max(4096);
export const FsList = z.strictObject({ path: FsPath, cursor: z.number().int().min(0).max(10_000_000).default(0), limit: z.number().int().min(1).max(1000).default(1000) });
export const FsRead = z.strictObject({ path: FsPath, offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), length: z.number().int().min(1).max(1 << 20) });
export const FsEntry = z.object({ name: z.string(), kind: z.enum(["file", "dir", "link", "other"]), size: z.number().int().min(0), mtime_ms: z.number() });
export const FsListResult = z.object({ entries: z.array(FsEntry).max(1000), next: z.number().int().nullable() });
export const FsReadResult = z.object({ data: base64, size: z.number().int().min(0), mtime_ms: z.number(), sha256: z.string().regex(/^[0-9a-f]{64}$/), eof: z.boolean() });

/** Request payload schema per command (what the guest validates). */
export const REQUEST_SCHEMAS: Record<CommandName, z.ZodType> = {
  hello: HelloRequest,
  ping: z.strictObject({}),
  get_info: z.strictObject({}),
  set_resolution: SetResolution,
  launch_app: LaunchApp,
  clipboard_get: z.strictObject({}),
  clipboard_set: ClipboardContent,
  screenshot: z.strictObject({ display: z.string().min(1).max(256).optional() }),
  shutdown: ShutdownRequest,
  gamepad_attach: GamepadAttach,
  gamepad_state: GamepadState,
  gamepad_detach: GamepadDetach,
  hid_create: HidCreate,
  hid_input: HidInput,
  hid_destroy: HidDestroy,
  fs_profiles: z.strictObject({}),
  fs_list: FsList,
  fs_read: FsRead,
  fs_hash: z.strictObject({ path: FsPath }),
};

/** Response payload schema per command (what the host validates). */
export const RESPONSE_SCHEMAS: Record<CommandName, z.ZodType> = {
  hello: HelloResponse,
  ping: PingResponse,
  get_info: GuestInfo,
  set_resolution: SetResolution.required({ display: true }),
  launch_app: LaunchResult,
  clipboard_get: ClipboardContent,
  clipboard_set: z.object({}),
  screenshot: Screenshot,
  shutdown: z.object({}),
  gamepad_attach: GamepadAttached,
  gamepad_state: z.object({}),
  gamepad_detach: z.object({}),
  hid_create: HidCreated,
  hid_input: z.object({}),
  hid_destroy: z.object({}),
  fs_profiles: z.object({ profiles: z.array(z.object({ name: z.string() })).max(10_000) }),
  fs_list: FsListResult,
  fs_read: FsReadResult,
  fs_hash: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().min(0) }),
};

export const EVENT_SCHEMAS: Record<EventName, z.ZodType> = {
  clipboard_changed: ClipboardContent,
  resolution_changed: Display,
  app_exited: AppExited,
  gamepad_rumble: GamepadRumble,
  hid_output: HidOutput,
};

/** Messages from the peer, classified. */
export type Incoming =
  | { kind: "request"; msg: RequestEnvelope }
  | { kind: "response"; msg: ResponseEnvelope }
  | { kind: "event"; msg: EventEnvelope }
  | { kind: "invalid"; reason: string };

export function classify(value: Record<string, unknown>): Incoming {
  if ("success" in value) {
    const r = ResponseEnvelope.safeParse(value);
    return r.success ? { kind: "response", msg: r.data } : { kind: "invalid", reason: `bad response: ${issues(r.error)}` };
  }
  if ("request_id" in value) {
    const r = RequestEnvelope.safeParse(value);
    return r.success ? { kind: "request", msg: r.data } : { kind: "invalid", reason: `bad request: ${issues(r.error)}` };
  }
  const r = EventEnvelope.safeParse(value);
  return r.success ? { kind: "event", msg: r.data } : { kind: "invalid", reason: `bad event: ${issues(r.error)}` };
}

export function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "(root)"} ${i.message}`)
    .join("; ");
}

// ---- management API shapes ----

export const VmNameParams = z.strictObject({
  name: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-' only"),
});
export const AgentCommandParams = VmNameParams.extend({ command: CommandName.exclude(["hello", "gamepad_attach", "gamepad_state", "gamepad_detach", "hid_create", "hid_input", "hid_destroy"]) });

export const AgentStatusBody = z
  .object({
    vm: z.string(),
    connected: z.boolean(),
    state: z.enum(["idle", "connecting", "connected", "backoff", "stopped"]),
    error: z.string().nullable(),
    sockets: z.object({ agent: z.string().nullable(), qga: z.string().nullable() }),
    hello: HelloResponse.nullable(),
    info: GuestInfo.nullable(),
    resolution: Display.nullable(),
    qga: z
      .object({ available: z.boolean(), os: z.record(z.string(), z.unknown()).nullable(), error: z.string().nullable() })
      .nullable(),
  })
  .meta({ id: "AgentStatus" });

export const AgentCommandResult = z
  .object({ vm: z.string(), command: CommandName, via: z.enum(["agent", "qga"]), data: z.unknown() })
  .meta({ id: "AgentCommandResult" });
