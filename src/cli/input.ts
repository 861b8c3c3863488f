import { existsSync } from "node:fs";
import { resolveNativePath } from "../../ffi/native.ts";
import type { SinkReport } from "../input/sinks.ts";
import { callLocalApi } from "./local-api.ts";
import { QmpInputBackend } from "../input/qmp-backend.ts";
import { loadKeyTable, type KeyRow } from "../input/keymap.ts";
import { vmQmpSocket } from "../vm/qmp-socket.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type CliContext, type Command, type ParsedArgs } from "./command.ts";
import { sendInput, SEND_FLAGS } from "./input-send.ts";

export const inputCommand: Command = {
  name: "input",
  summary: "Drive a VM's input: send keys, text and pointer events, probe which devices serve it, print the key table.",
  usage: [
    "input probe (VM | --qmp SOCKET | --vm NAME) [--json]",
    "       input send VM (--keys ctrl+alt+delete | --text TEXT | --move DX,DY | --abs X,Y | --click BUTTON | --wheel N) [--layout L] [--json]",
    "       input keymap [KEY] [--json]",
  ].join("\n"),
  help: [
    "probe (which device serves each event class, why, how native it looks):",
    "  VM            through the running service (its held connection), else the VM's QMP socket",
    "  --qmp SOCKET  the VM's QMP unix socket (a QMP socket of its definition)",
    "  --vm NAME     a VM the appliance defined: its socket <qmpDir>/NAME.qmp",
    "send (through the running service's local API):",
    "  --keys CHORD  press the keys in order, release them in reverse (ctrl+alt+delete, KEY_F1, 0x04)",
    "  --text TEXT   type TEXT as key taps by the guest's keyboard layout (--layout, default us)",
    "  --move DX,DY  relative pointer motion; --abs X,Y absolute position (0..32767)",
    "  --click B     press and release button B (1-5 or left/middle/right/back/forward)",
    "  --wheel N     N wheel notches (positive: up); a negative value as --wheel=-1 (likewise --move=-3,4)",
    "keymap:",
    "  KEY           one key (KEY_A, a qcode like ret, an evdev code, 0x04 as HID usage); none: every key",
    "  --json        print the result as JSON",
  ].join("\n"),
  flags: { ...JSON_FLAG, qmp: { type: "string" }, vm: { type: "string" }, ...SEND_FLAGS },
  positionals: true,
  async run(args, ctx) {
    const [sub, ...extra] = args.positionals;
    if (sub === "probe") return probe(args, ctx, extra);
    if (sub === "keymap") return keymap(args, ctx, extra);
    if (sub === "send") return sendInput(args, ctx, extra);
    throw new UsageError("input: expected `input probe`, `input send VM ...` or `input keymap [KEY]`");
  },
};

/** A key table row as `input keymap --json` prints it. */
export function keymapRow(r: KeyRow) {
  return { evdev: r.evdev, name: r.name, page: r.hidPage, hid: r.hid, set1: r.set1, set2: r.set2, qcode: r.qcode, vk: r.vk };
}

async function keymap(args: ParsedArgs, ctx: CliContext, extra: string[]): Promise<number> {
  if (extra.length > 1) throw new UsageError("input keymap: at most one KEY");
  const config = configFrom(args, ctx);
  const table = loadKeyTable(resolveNativePath({ explicit: config.nativeLib, embedded: ctx.embeddedNativeLib }));
  let rows = table.rows;
  if (extra.length === 1) {
    const r = table.resolve(extra[0]!);
    if (!r) throw new UsageError(`input keymap: no key ${JSON.stringify(extra[0]!.slice(0, 40))} (try KEY_A, a qcode like ret, an evdev code, or 0x04)`);
    rows = [r];
  }
  if (args.values.json) {
    printJson(ctx, extra.length === 1 ? keymapRow(rows[0]!) : rows.map(keymapRow));
    return 0;
  }
  const h = (n: number, w: number) => `0x${n.toString(16).padStart(w, "0")}`;
  ctx.stdout(`${"evdev".padEnd(6)}${"name".padEnd(22)}${"hid".padEnd(12)}${"set1 make / break".padEnd(34)}${"set2 make / break".padEnd(40)}${"qcode".padEnd(18)}vk\n`);
  for (const r of rows) {
    ctx.stdout(
      `${String(r.evdev).padEnd(6)}${r.name.padEnd(22)}${`${h(r.hidPage, 2)}:${h(r.hid, 2)}`.padEnd(12)}` +
        `${`${r.set1.make} / ${r.set1.break || "-"}`.padEnd(34)}${`${r.set2.make} / ${r.set2.break || "-"}`.padEnd(40)}` +
        `${(r.qcode ?? "-").padEnd(18)}${r.vk === null ? "-" : h(r.vk, 2)}\n`,
    );
  }
  return 0;
}

function printSinks(ctx: CliContext, sinks: SinkReport[]): void {
  ctx.stdout("sinks:\n");
  for (const s of sinks) ctx.stdout(`  ${s.eventClass.padEnd(10)} ${(s.sink ?? "-").padEnd(12)} stealth ${s.stealth}  ${s.why}\n`);
}

async function probe(args: ParsedArgs, ctx: CliContext, extra: string[]): Promise<number> {
  if (extra.length > 1) throw new UsageError("input probe: unexpected arguments");
  const { qmp } = args.values;
  let vm = args.values.vm;
  if (extra.length === 1) {
    if (typeof qmp === "string" || typeof vm === "string") throw new UsageError("input probe: give a VM or one of --qmp SOCKET / --vm NAME");
    vm = extra[0]!;
    // the running service holds the VM's QMP connection: ask it
    const config = configFrom(args, ctx);
    if (existsSync(config.socketPath)) {
      const r = await callLocalApi<{ vm: string; qemu: string | null; sinks: SinkReport[] }>(config, "GET", `/vms/${encodeURIComponent(vm)}/input-sinks`);
      if (args.values.json) printJson(ctx, r);
      else printSinks(ctx, r!.sinks);
      return 0;
    }
  }
  if ((typeof qmp === "string") === (typeof vm === "string")) throw new UsageError("input probe: give a VM, or one of --qmp SOCKET or --vm NAME");
  const socketPath = typeof vm === "string" ? vmQmpSocket(configFrom(args, ctx).qmpDir, vm) : String(qmp);
  if (socketPath.length === 0) throw new UsageError("input probe: --qmp SOCKET must not be empty");
  const backend = new QmpInputBackend({ socketPath, reconnect: false });
  try {
    await backend.open();
    const result = { backend: backend.name, socket: socketPath, qemu: backend.qemuVersion, capabilities: backend.capabilities, sinks: backend.sinks() };
    if (args.values.json) printJson(ctx, result);
    else {
      ctx.stdout(`backend: ${result.backend} (QEMU ${result.qemu ?? "?"}) on ${socketPath}\n`);
      for (const [k, v] of Object.entries(result.capabilities)) ctx.stdout(`  ${k.padEnd(16)} ${v ? "yes" : "no"}\n`);
      printSinks(ctx, result.sinks);
    }
    return 0;
  } finally {
    await backend.close();
  }
}
