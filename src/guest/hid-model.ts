/**
 * Virtual HID devices of the agent protocol (PROTOCOL.md, "HID devices"): the host sends a
 * report descriptor it generated and checked (native/hid.h), the agent creates the device
 * (Linux: /dev/uhid) and feeds it the input reports the host sends. Shared by the host
 * backend and the in-guest service.
 */
import { z } from "zod";

/** Devices a host may hold in one guest at once (ids 0..31). */
/** The agent commands that make, feed and remove virtual HID devices. */
export type HidCommand = "hid_create" | "hid_input" | "hid_destroy";

export const MAX_HID_DEVICES = 32;
/** Largest report descriptor and report (uhid's own limit, UHID_DATA_MAX). */
export const MAX_HID_BYTES = 4096;
/** Reports in one hid_input request. */
export const MAX_HID_REPORTS = 64;
/** GET_REPORT answers one device holds (feature reports by report ID). */
export const MAX_HID_FEATURES = 16;

const id = z.number().int().min(0).max(MAX_HID_DEVICES - 1);
const u16 = z.number().int().min(0).max(0xffff);
/** base64 of 1..MAX_HID_BYTES bytes. */
const bytes = z
  .string()
  .min(4)
  .max(Math.ceil(MAX_HID_BYTES / 3) * 4)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64")
  .refine((s) => s.length % 4 === 0, "must be padded base64");

export const HID_BUSES = { usb: 0x03, bluetooth: 0x05, virtual: 0x06 } as const;

export const HidCreate = z.strictObject({
  id,
  /** The device's name as the guest shows it. */
  name: z.string().min(1).max(127),
  bus: z.enum(["usb", "bluetooth", "virtual"]).default("usb"),
  vendor: u16,
  product: u16,
  version: u16.default(1),
  /** Unique string (serial); the guest's drivers may replace it (hid-playstation sets the MAC). */
  uniq: z.string().max(63).default(""),
  descriptor: bytes,
  /** Answers to the kernel's GET_REPORT for feature reports: report ID (decimal string) → bytes, report ID first. */
  features: z
    .record(z.string().regex(/^(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-5])$/, "a report ID 1..255"), bytes)
    .refine((r) => Object.keys(r).length <= MAX_HID_FEATURES, `at most ${MAX_HID_FEATURES} feature reports`)
    .default({}),
});
export type HidCreate = z.output<typeof HidCreate>;

export const HidInput = z.strictObject({ id, reports: z.array(bytes).min(1).max(MAX_HID_REPORTS) });
export type HidInput = z.output<typeof HidInput>;

export const HidDestroy = z.strictObject({ id });
export type HidDestroy = z.output<typeof HidDestroy>;

/** What hid_create answers: the evdev nodes the guest's HID driver made from the device. */
export const HidCreated = z.object({
  id,
  /** The driver that took the device (hid-generic, playstation, ...), null when none bound in time. */
  driver: z.string().max(64).nullable(),
  inputs: z.array(z.object({ node: z.string().max(256), name: z.string().max(256) })).max(16),
});
export type HidCreated = z.infer<typeof HidCreated>;

/** Guest → host event: the guest's driver wrote an output report (LEDs, rumble) to device `id`. */
export const HidOutput = z.object({ id, data: bytes });
export type HidOutput = z.infer<typeof HidOutput>;

export const decodeBase64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));
export const encodeBase64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
