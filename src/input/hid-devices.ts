/**
 * The virtual HID devices the agent sink creates in a guest: which descriptor (native/hid.h,
 * checked by our own parser before it leaves the host), which identity, and which feature
 * reports the device answers the guest's driver with.
 *
 * DualSense: Sony's ids (054c:0ce6) make Linux bind hid-playstation, which asks at probe
 * for three feature reports and refuses the device without them: 0x05 calibration (41
 * bytes), 0x09 pairing info (20 bytes, the MAC at 1..6; a MAC already in use is refused),
 * 0x20 firmware info (64 bytes). The calibration given makes the driver's scaling simple:
 * gyro raw units are 1/16 °/s (evdev value = raw × 64, 1024 per °/s), accel raw units are
 * 1/8192 g (evdev value = raw, 8192 per g).
 */
import { randomBytes } from "node:crypto";
import type { HidKind, HidNative } from "../../ffi/hid.ts";
import { AppError } from "../errors.ts";
import { encodeBase64, type HidCreate } from "../guest/hid-model.ts";

export type HidDeviceRole = "keyboard" | "mouse" | "tablet" | "xbox" | "dualsense";

/** Gyro raw units per °/s and accel raw units per g with the calibration below. */
export const DS_GYRO_RAW_PER_DPS = 16;
export const DS_ACCEL_RAW_PER_G = 8192;
export const DS_TOUCH_MAX_X = 1919;
export const DS_TOUCH_MAX_Y = 1079;

const IDENTITY: Record<HidDeviceRole, { kind: HidKind; name: string; vendor: number; product: number }> = {
  // pid.codes (0x1209) test range: an identity no vendor driver claims, so hid-generic takes it
  keyboard: { kind: "keyboardNkro", name: "NeuronOS Keyboard", vendor: 0x1209, product: 0x4e01 },
  mouse: { kind: "mouse", name: "NeuronOS Mouse", vendor: 0x1209, product: 0x4e02 },
  tablet: { kind: "tablet", name: "NeuronOS Tablet", vendor: 0x1209, product: 0x4e03 },
  // the Xbox 360 pad's ids, as the uinput pad has: games' mapping databases know the pair
  xbox: { kind: "xbox", name: "NeuronOS Virtual Gamepad", vendor: 0x045e, product: 0x028e },
  dualsense: { kind: "dualsense", name: "Sony Interactive Entertainment DualSense Wireless Controller", vendor: 0x054c, product: 0x0ce6 },
};

function le16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >> 8) & 0xff;
}

/** The three feature reports hid-playstation reads at probe, for a pad with this MAC. */
export function dualsenseFeatures(mac: Uint8Array): Record<string, Uint8Array> {
  const cal = new Uint8Array(41);
  cal[0] = 0x05;
  // gyro bias pitch/yaw/roll 0; plus/minus per axis ±8192; speed plus/minus 512 each
  for (let i = 0; i < 3; i++) {
    le16(cal, 7 + 4 * i, 8192);
    le16(cal, 9 + 4 * i, -8192);
  }
  le16(cal, 19, 512);
  le16(cal, 21, 512);
  // accel plus/minus per axis ±8192 (range 2 g, bias 0)
  for (let i = 0; i < 3; i++) {
    le16(cal, 23 + 4 * i, 8192);
    le16(cal, 25 + 4 * i, -8192);
  }
  const pairing = new Uint8Array(20);
  pairing[0] = 0x09;
  pairing.set(mac.subarray(0, 6), 1);
  const fw = new Uint8Array(64);
  fw[0] = 0x20;
  const v = new DataView(fw.buffer);
  v.setUint32(24, 0x00000614, true); // hardware version
  v.setUint32(28, 0x01000013, true); // firmware version
  v.setUint16(44, 0x0224, true); // update version 2.36: the driver uses vibration v2
  return { "5": cal, "9": pairing, "32": fw };
}

/**
 * hid_create's request for one device. The descriptor is checked by native/hid.c's parser
 * first: a descriptor it refuses never reaches a guest.
 */
export function hidCreateRequest(hid: HidNative, role: HidDeviceRole, id: number, index = 0): HidCreate {
  const ident = IDENTITY[role];
  const descriptor = hid.descriptor(ident.kind);
  const info = hid.parse(descriptor);
  if (!info || info.reports.length === 0 || !info.reports.some((r) => r.inputBits > 0))
    throw new AppError("HID_DESCRIPTOR_INVALID", `the ${role} report descriptor does not pass the descriptor parser`, { status: 500 });
  // a locally administered MAC, fresh per device (hid-playstation refuses a MAC twice)
  const mac = randomBytes(6);
  mac[5] = (mac[5]! & 0xfc) | 0x02;
  const features = role === "dualsense" ? dualsenseFeatures(mac) : {};
  return {
    id,
    name: role === "xbox" ? `${ident.name} ${index}` : ident.name,
    bus: "usb",
    vendor: ident.vendor,
    product: ident.product,
    version: 0x0100,
    uniq: `neuron-${role}-${index}`,
    descriptor: encodeBase64(descriptor),
    features: Object.fromEntries(Object.entries(features).map(([k, b]) => [k, encodeBase64(b)])),
  };
}

export const hidRoleKind = (role: HidDeviceRole): HidKind => IDENTITY[role].kind;
