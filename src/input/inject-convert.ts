/**
 * The input API's events (model.ts InjectEvent) → the common input events the backends
 * take. A whole batch converts or none of it does: an unknown key or a character the
 * guest's layout cannot type throws (422) before anything is sent.
 */
import { invalid } from "../errors.ts";
import { HID_PAGE_KEYBOARD, type KeyRow, type KeyTable } from "./keymap.ts";
import type { Layout } from "./layouts.ts";
import { ABS_MAX, MAX_BATCH_TEXT, MOUSE_BUTTONS, type InjectEvent, type InputEvent, type TouchEventType, type UsageKeyEvent } from "./model.ts";

/** One step of a converted batch: events to submit, or "release everything this connection holds". */
export type InputOp = InputEvent | { kind: "releaseAll" };

export interface ConvertContext {
  table: KeyTable;
  /** The layout text is typed by (by name; the VM's default when an event names none). */
  layout(name?: string): Layout;
  /** Gamepads this connection has attached (bit n: pad n) before this batch. */
  padMask: number;
}

export const usageKey = (row: KeyRow, down: boolean): UsageKeyEvent => ({
  kind: "usageKey",
  down,
  page: row.hidPage,
  usage: row.hid,
  evdev: row.evdev,
  qcode: row.qcode,
});

const TOUCH_PHASE: Record<string, TouchEventType> = { down: "down", move: "move", up: "up", cancel: "cancel", hover: "hover" };

/** Converts a validated batch; throws a 422 AppError naming the first bad event. */
export function convertBatch(events: readonly InjectEvent[], ctx: ConvertContext): { ops: InputOp[]; padMask: number } {
  const out: InputOp[] = [];
  let text = 0;
  // the caller keeps the new mask only when the whole batch converted
  let mask = ctx.padMask;
  events.forEach((ev, i) => {
    const bad = (msg: string) => invalid(`events[${i}]: ${msg}`);
    switch (ev.type) {
      case "key": {
        const page = ev.page ?? HID_PAGE_KEYBOARD;
        const row = ctx.table.byHid(page, ev.usage);
        if (!row) throw bad(`no key has HID usage 0x${ev.usage.toString(16)} on page 0x${page.toString(16)}`);
        out.push(usageKey(row, ev.down));
        break;
      }
      case "move":
        out.push({ kind: "mouseMoveRel", dx: ev.dx, dy: ev.dy });
        break;
      case "abs":
        out.push({ kind: "mouseMoveAbs", x: ev.x, y: ev.y, width: ABS_MAX + 1, height: ABS_MAX + 1 });
        break;
      case "button":
        out.push({ kind: "mouseButton", button: MOUSE_BUTTONS[ev.button - 1]!, down: ev.down });
        break;
      case "wheel":
        if (ev.dy) out.push({ kind: "scroll", amount: ev.dy });
        if (ev.dx) out.push({ kind: "hscroll", amount: ev.dx });
        break;
      case "text": {
        text += ev.text.length;
        if (text > MAX_BATCH_TEXT) throw bad(`more than ${MAX_BATCH_TEXT} characters of text in one batch`);
        let layout: Layout;
        try {
          layout = ctx.layout(ev.layout);
        } catch (err) {
          throw bad((err as Error).message);
        }
        const shift = ctx.table.byName("KEY_LEFTSHIFT")!;
        const altgr = ctx.table.byName("KEY_RIGHTALT")!;
        for (const ch of ev.text) {
          const s = layout.get(ch);
          if (!s) throw bad(`the keyboard layout cannot type ${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).padStart(4, "0")})`);
          if (s.shift) out.push(usageKey(shift, true));
          if (s.altgr) out.push(usageKey(altgr, true));
          out.push(usageKey(s.key, true), usageKey(s.key, false));
          if (s.altgr) out.push(usageKey(altgr, false));
          if (s.shift) out.push(usageKey(shift, false));
        }
        break;
      }
      case "releaseAll":
        out.push({ kind: "releaseAll" });
        break;
      case "gamepadAttach":
        mask |= 1 << ev.pad;
        out.push({ kind: "controllerArrival", controllerNumber: ev.pad, type: ev.kind === "xbox" ? "xbox" : "playstation", capabilities: 0, supportedButtonFlags: 0 });
        break;
      case "gamepad":
        mask |= 1 << ev.pad;
        out.push({
          kind: "controller",
          controllerNumber: ev.pad,
          activeGamepadMask: mask,
          buttonFlags: ev.buttons,
          leftTrigger: ev.lt ?? 0,
          rightTrigger: ev.rt ?? 0,
          leftStickX: ev.lx ?? 0,
          leftStickY: ev.ly ?? 0,
          rightStickX: ev.rx ?? 0,
          rightStickY: ev.ry ?? 0,
        });
        break;
      case "gamepadDetach":
        // a neutral state now; the agent removes the pad when the next state names the others
        mask &= ~(1 << ev.pad);
        out.push({ kind: "controller", controllerNumber: ev.pad, activeGamepadMask: mask, buttonFlags: 0, leftTrigger: 0, rightTrigger: 0, leftStickX: 0, leftStickY: 0, rightStickX: 0, rightStickY: 0 });
        break;
      case "gamepadMotion":
        out.push({ kind: "controllerMotion", controllerNumber: ev.pad, motionType: ev.sensor, x: ev.x, y: ev.y, z: ev.z });
        break;
      case "touch":
        out.push({
          kind: "touch",
          eventType: TOUCH_PHASE[ev.phase]!,
          pointerId: ev.id,
          x: ev.x / ABS_MAX,
          y: ev.y / ABS_MAX,
          pressureOrDistance: ev.pressure ?? 1,
          rotation: 0xffff,
          contactAreaMajor: 0,
          contactAreaMinor: 0,
        });
        break;
      case "pen":
        out.push({
          kind: "pen",
          eventType: TOUCH_PHASE[ev.phase]!,
          toolType: ev.eraser ? "eraser" : "pen",
          penButtons: ev.buttons ?? 0,
          x: ev.x / ABS_MAX,
          y: ev.y / ABS_MAX,
          pressureOrDistance: ev.pressure ?? (ev.phase === "hover" ? 0 : 1),
          rotation: 0xffff,
          tilt: 0xff,
          contactAreaMajor: 0,
          contactAreaMinor: 0,
        });
        break;
    }
  });
  return { ops: out, padMask: mask };
}
