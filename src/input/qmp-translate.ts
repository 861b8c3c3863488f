/**
 * Translation of common input events into QMP `input-send-event` events
 * (QEMU's InputEvent union: key / btn / rel / abs). Pure logic with per-session
 * state: held keys and buttons (to release them on session end), wheel
 * remainders (high-resolution wheels send less than a notch), the primary
 * touch contact emulated as an absolute pointer.
 */
import {
  WHEEL_DELTA,
  type InputEvent,
  type InputEventKind,
  type MouseButton,
  type PenEvent,
  type TouchEvent,
} from "./model.ts";
import { US_CHAR_KEYS, VK_TO_QCODE } from "./vk-qcode.ts";

export type QmpInputEvent =
  | { type: "key"; data: { down: boolean; key: { type: "qcode"; data: string } } }
  | { type: "btn"; data: { down: boolean; button: string } }
  | { type: "rel"; data: { axis: "x" | "y"; value: number } }
  | { type: "abs"; data: { axis: "x" | "y"; value: number } };

/** QEMU's absolute axis range (INPUT_EVENT_ABS_MIN..MAX). */
export const QMP_ABS_MAX = 0x7fff;
/** Most wheel notches one packet may produce (a hostile amount cannot flood the guest). */
export const MAX_NOTCHES_PER_EVENT = 16;

const BUTTON_QCODE: Record<MouseButton, string> = {
  left: "left",
  middle: "middle",
  right: "right",
  x1: "side",
  x2: "extra",
};

export interface TranslatorSupport {
  /** QKeyCode values the target accepts. */
  qcodes: ReadonlySet<string>;
  /** InputButton values the target accepts. */
  buttons: ReadonlySet<string>;
  absolute: boolean;
}

export type TranslateResult =
  | { ok: true; events: QmpInputEvent[] }
  | { ok: false; why: "unsupported" | "unmapped" };

const key = (qcode: string, down: boolean): QmpInputEvent => ({
  type: "key",
  data: { down, key: { type: "qcode", data: qcode } },
});
const btn = (button: string, down: boolean): QmpInputEvent => ({ type: "btn", data: { down, button } });

export function scaleAbs(value: number, extent: number): number {
  const max = Math.max(1, extent - 1);
  const v = Math.min(Math.max(value, 0), max);
  return Math.round((v * QMP_ABS_MAX) / max);
}

const scaleUnit = (f: number) => Math.round(Math.min(Math.max(f, 0), 1) * QMP_ABS_MAX);

export class QmpTranslator {
  /** qcode → held. */
  private readonly heldKeys = new Set<string>();
  private readonly heldButtons = new Set<string>();
  private wheelRemainder = 0;
  private hwheelRemainder = 0;
  /** pointerId of the touch/pen contact driving the pointer, or null. */
  private primaryContact: number | null = null;

  constructor(private support: TranslatorSupport) {}

  /** After a reconnect the target may be a different QEMU: re-learn what it accepts. */
  updateSupport(support: TranslatorSupport): void {
    this.support = support;
  }

  /** Which event kinds this translator can ever express. */
  supports(kind: InputEventKind): boolean {
    switch (kind) {
      case "key":
      case "usageKey":
      case "mouseMoveRel":
      case "mouseButton":
      case "scroll":
      case "text":
        return true;
      case "hscroll":
        return this.support.buttons.has("wheel-left");
      case "mouseMoveAbs":
      case "touch":
      case "pen":
        return this.support.absolute;
      default:
        return false;
    }
  }

  translate(ev: InputEvent): TranslateResult {
    if (!this.supports(ev.kind)) return { ok: false, why: "unsupported" };
    switch (ev.kind) {
      case "key": {
        const q = VK_TO_QCODE.get(ev.vk);
        if (q === undefined || !this.support.qcodes.has(q)) return { ok: false, why: "unmapped" };
        if (ev.down) this.heldKeys.add(q);
        else this.heldKeys.delete(q);
        return { ok: true, events: [key(q, ev.down)] };
      }
      case "usageKey": {
        const q = ev.qcode;
        if (q === null || !this.support.qcodes.has(q)) return { ok: false, why: "unmapped" };
        if (ev.down) this.heldKeys.add(q);
        else this.heldKeys.delete(q);
        return { ok: true, events: [key(q, ev.down)] };
      }
      case "mouseMoveRel": {
        const out: QmpInputEvent[] = [];
        if (ev.dx !== 0) out.push({ type: "rel", data: { axis: "x", value: ev.dx } });
        if (ev.dy !== 0) out.push({ type: "rel", data: { axis: "y", value: ev.dy } });
        return { ok: true, events: out };
      }
      case "mouseMoveAbs":
        return { ok: true, events: this.abs(scaleAbs(ev.x, ev.width), scaleAbs(ev.y, ev.height)) };
      case "mouseButton": {
        const b = BUTTON_QCODE[ev.button];
        if (!this.support.buttons.has(b)) return { ok: false, why: "unsupported" };
        return { ok: true, events: [this.button(b, ev.down)] };
      }
      case "scroll": {
        const { notches, rest } = notchesOf(this.wheelRemainder + ev.amount);
        this.wheelRemainder = rest;
        return { ok: true, events: wheelTaps(notches > 0 ? "wheel-up" : "wheel-down", Math.abs(notches)) };
      }
      case "hscroll": {
        const { notches, rest } = notchesOf(this.hwheelRemainder + ev.amount);
        this.hwheelRemainder = rest;
        return { ok: true, events: wheelTaps(notches > 0 ? "wheel-right" : "wheel-left", Math.abs(notches)) };
      }
      case "text":
        return this.text(ev.text);
      case "touch":
      case "pen":
        return { ok: true, events: this.contact(ev) };
      default:
        return { ok: false, why: "unsupported" };
    }
  }

  /** Release events for everything held; clears the held state. */
  releaseAll(): QmpInputEvent[] {
    const out: QmpInputEvent[] = [];
    for (const q of this.heldKeys) out.push(key(q, false));
    for (const b of this.heldButtons) out.push(btn(b, false));
    this.heldKeys.clear();
    this.heldButtons.clear();
    this.primaryContact = null;
    this.wheelRemainder = 0;
    this.hwheelRemainder = 0;
    return out;
  }

  held(): { keys: string[]; buttons: string[] } {
    return { keys: [...this.heldKeys], buttons: [...this.heldButtons] };
  }

  private button(b: string, down: boolean): QmpInputEvent {
    if (down) this.heldButtons.add(b);
    else this.heldButtons.delete(b);
    return btn(b, down);
  }

  private abs(x: number, y: number): QmpInputEvent[] {
    return [
      { type: "abs", data: { axis: "x", value: x } },
      { type: "abs", data: { axis: "y", value: y } },
    ];
  }

  private text(text: string): TranslateResult {
    const out: QmpInputEvent[] = [];
    // Shift keys the user holds: lifted around unshifted characters, pressed again after.
    const heldShifts = ["shift", "shift_r"].filter((q) => this.heldKeys.has(q));
    for (const ch of text) {
      const k = US_CHAR_KEYS.get(ch);
      if (!k || !this.support.qcodes.has(k.qcode)) return { ok: false, why: "unmapped" };
      const tap = [key(k.qcode, true), key(k.qcode, false)];
      if (k.shift && heldShifts.length === 0) out.push(key("shift", true), ...tap, key("shift", false));
      else if (!k.shift && heldShifts.length > 0) {
        out.push(...heldShifts.map((q) => key(q, false)), ...tap, ...heldShifts.map((q) => key(q, true)));
      } else out.push(...tap);
    }
    return { ok: true, events: out };
  }

  /** One contact drives the pointer: down → press left, move → move, up/cancel → release. */
  private contact(ev: TouchEvent | PenEvent): QmpInputEvent[] {
    const pos = () => this.abs(scaleUnit(ev.x), scaleUnit(ev.y));
    // A pen is one contact; give it an id no touch pointer can have.
    const id = ev.kind === "touch" ? ev.pointerId : -1;
    switch (ev.eventType) {
      case "hover":
        return this.primaryContact === null ? pos() : [];
      case "down":
        if (this.primaryContact !== null && this.primaryContact !== id) return [];
        this.primaryContact = id;
        return [...pos(), this.button("left", true)];
      case "move":
        return this.primaryContact === id ? pos() : [];
      case "up":
      case "cancel":
        if (this.primaryContact !== id) return [];
        this.primaryContact = null;
        return this.heldButtons.has("left") ? [this.button("left", false)] : [];
      case "cancelAll":
        this.primaryContact = null;
        return this.heldButtons.has("left") ? [this.button("left", false)] : [];
      case "buttonOnly":
      case "hoverLeave":
        return [];
    }
  }
}

function notchesOf(total: number): { notches: number; rest: number } {
  const notches = Math.trunc(total / WHEEL_DELTA);
  const bounded = Math.max(-MAX_NOTCHES_PER_EVENT, Math.min(MAX_NOTCHES_PER_EVENT, notches));
  // Drop what exceeded the bound instead of carrying it into later events.
  return { notches: bounded, rest: bounded === notches ? total - notches * WHEEL_DELTA : 0 };
}

function wheelTaps(button: string, n: number): QmpInputEvent[] {
  const out: QmpInputEvent[] = [];
  for (let i = 0; i < n; i++) out.push(btn(button, true), btn(button, false));
  return out;
}
