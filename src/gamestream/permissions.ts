/**
 * What a paired GameStream client may do on this host. The first client paired (no pairing in
 * the database yet) gets every permission; later ones get `view` only until the owner grants
 * more (`neuron-appliance pair grant ID PERM`, POST /api/v1/pairings/{id}/permissions).
 * Pairings made before permissions existed were migrated with every permission (they were
 * paired by the owner entering the PIN, and had full access then).
 *
 *  view        serverinfo, applist, box art, /resume of the client's own running session
 *  keyboard    key and text events on the control stream
 *  mouse       pointer, buttons, wheels, touch and pen events
 *  controller  gamepad state, arrival, motion, touchpad, battery, haptics
 *  launch      /launch (start an app, or replace the client's own session)
 *  clipboard   clipboard exchange with the session's VM (no GameStream message carries it yet)
 */
import type { InputEventKind } from "../input/model.ts";

export const GS_PERMISSIONS = ["view", "keyboard", "mouse", "controller", "launch", "clipboard"] as const;
export type GsPermission = (typeof GS_PERMISSIONS)[number];

/** What a client gets at pairing: everything when it is the first, else `view` only. */
export const permissionsForNewPairing = (isFirst: boolean): GsPermission[] => (isFirst ? [...GS_PERMISSIONS] : ["view"]);

export type InputPermission = Extract<GsPermission, "keyboard" | "mouse" | "controller">;

const INPUT_PERMISSION: Record<InputEventKind, InputPermission> = {
  key: "keyboard",
  usageKey: "keyboard",
  text: "keyboard",
  mouseMoveRel: "mouse",
  mouseMoveAbs: "mouse",
  mouseButton: "mouse",
  scroll: "mouse",
  hscroll: "mouse",
  touch: "mouse",
  pen: "mouse",
  controller: "controller",
  controllerArrival: "controller",
  controllerTouch: "controller",
  controllerMotion: "controller",
  controllerBattery: "controller",
  enableHaptics: "controller",
};

/** The permission an input event needs. */
export const permissionForInput = (kind: InputEventKind): InputPermission => INPUT_PERMISSION[kind];

/** Parses a stored permission list (JSON array); unknown names are dropped, order normalised. */
export function normalizePermissions(list: readonly string[]): GsPermission[] {
  const set = new Set(list);
  return GS_PERMISSIONS.filter((p) => set.has(p));
}
