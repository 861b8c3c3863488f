/** A decoded GameStream controller state for pad 0 (all neutral), with the fields a test sets. */
import type { ControllerStateEvent } from "../../src/input/model.ts";

export const pad = (s: Partial<ControllerStateEvent>): ControllerStateEvent => ({
  kind: "controller",
  controllerNumber: 0,
  activeGamepadMask: 1,
  buttonFlags: 0,
  leftTrigger: 0,
  rightTrigger: 0,
  leftStickX: 0,
  leftStickY: 0,
  rightStickX: 0,
  rightStickY: 0,
  ...s,
});
