/**
 * `input send VM ...`: builds one inject-input batch from the flags and posts it to the
 * running service's local API (which holds the VM's input connection).
 */
import { resolveNativePath } from "../../ffi/native.ts";
import { loadKeyTable } from "../input/keymap.ts";
import type { InjectEvent } from "../input/model.ts";
import { callLocalApi } from "./local-api.ts";
import { configFrom, printJson, UsageError, type CliContext, type FlagSpec, type ParsedArgs } from "./command.ts";

export const SEND_FLAGS = {
  keys: { type: "string" },
  text: { type: "string" },
  move: { type: "string" },
  abs: { type: "string" },
  click: { type: "string" },
  wheel: { type: "string" },
  layout: { type: "string" },
} as const satisfies FlagSpec;

const BUTTONS: Record<string, number> = { left: 1, middle: 2, right: 3, back: 4, side: 4, forward: 5, extra: 5 };

function pair(flag: string, v: string, min: number, max: number): [number, number] {
  const m = /^(-?\d+),(-?\d+)$/.exec(v.trim());
  const a = m ? Number(m[1]) : NaN;
  const b = m ? Number(m[2]) : NaN;
  if (!m || a < min || a > max || b < min || b > max) throw new UsageError(`input send: --${flag} takes two integers A,B in ${min}..${max}`);
  return [a, b];
}

/** The batch the flags describe (in the order: keys, text, move, abs, click, wheel). */
export function sendBatch(values: ParsedArgs["values"], resolveKey: (spec: string) => { hid: number; hidPage: number } | undefined): InjectEvent[] {
  const events: InjectEvent[] = [];
  if (typeof values.keys === "string") {
    const names = values.keys.split("+").filter((s) => s.length > 0);
    if (names.length === 0 || names.length > 16) throw new UsageError("input send: --keys takes 1 to 16 keys joined by + (ctrl+alt+delete)");
    const rows = names.map((n) => {
      const r = resolveKey(n);
      if (!r) throw new UsageError(`input send: no key ${JSON.stringify(n.slice(0, 40))} (see \`input keymap\`)`);
      return r;
    });
    const ev = (r: { hid: number; hidPage: number }, down: boolean): InjectEvent => ({ type: "key", usage: r.hid, ...(r.hidPage !== 7 ? { page: r.hidPage as 1 | 12 } : {}), down });
    for (const r of rows) events.push(ev(r, true));
    for (const r of [...rows].reverse()) events.push(ev(r, false));
  }
  if (typeof values.text === "string") {
    if (values.text.length === 0) throw new UsageError("input send: --text must not be empty");
    events.push({ type: "text", text: values.text, ...(typeof values.layout === "string" ? { layout: values.layout } : {}) });
  }
  if (typeof values.move === "string") {
    const [dx, dy] = pair("move", values.move, -32768, 32767);
    events.push({ type: "move", dx, dy });
  }
  if (typeof values.abs === "string") {
    const [x, y] = pair("abs", values.abs, 0, 32767);
    events.push({ type: "abs", x, y });
  }
  if (typeof values.click === "string") {
    const b = /^[1-5]$/.test(values.click) ? Number(values.click) : BUTTONS[values.click.toLowerCase()];
    if (!b) throw new UsageError("input send: --click takes 1-5 or left, middle, right, back, forward");
    events.push({ type: "button", button: b, down: true }, { type: "button", button: b, down: false });
  }
  if (typeof values.wheel === "string") {
    if (!/^-?\d+$/.test(values.wheel) || Math.abs(Number(values.wheel)) > 100 || Number(values.wheel) === 0) throw new UsageError("input send: --wheel takes a non-zero number of notches, -100..100");
    events.push({ type: "wheel", dy: Number(values.wheel) * 120 });
  }
  return events;
}

export async function sendInput(args: ParsedArgs, ctx: CliContext, extra: string[]): Promise<number> {
  if (extra.length !== 1) throw new UsageError("input send: expected one VM name, then what to send (--keys, --text, --move, --abs, --click, --wheel)");
  const vm = extra[0]!;
  const config = configFrom(args, ctx);
  let table: ReturnType<typeof loadKeyTable> | null = null;
  const events = sendBatch(args.values, (spec) => {
    table ??= loadKeyTable(resolveNativePath({ explicit: config.nativeLib, embedded: ctx.embeddedNativeLib }));
    return table.resolve(spec);
  });
  if (events.length === 0) throw new UsageError("input send: nothing to send: give --keys, --text, --move, --abs, --click or --wheel");
  const r = await callLocalApi<{ accepted: number; sinks: Record<string, string | null> }>(config, "POST", `/vms/${encodeURIComponent(vm)}/inject-input`, { events });
  if (args.values.json) printJson(ctx, r);
  else ctx.stdout(`sent ${r?.accepted ?? 0} events to ${vm} (keyboard: ${r?.sinks.keyboard ?? "-"}, pointer: ${r?.sinks.pointer ?? "-"})\n`);
  return 0;
}
