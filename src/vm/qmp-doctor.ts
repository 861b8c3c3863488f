/**
 * Doctor check for input into the VMs: every defined VM must carry the
 * appliance's QMP monitor (`-qmp unix:<qmpDir>/<vm>.qmp` in <qemu:commandline>,
 * see qmp-socket.ts) — a VM defined by hand without it streams, but its
 * client's keyboard and mouse cannot reach it; a running VM must have its
 * socket; the directory must belong to QEMU's user (the owner of libvirt's
 * QEMU directory), mode 0750.
 */
import { existsSync, lstatSync, statSync } from "node:fs";
import type { Config } from "../config.ts";
import type { DoctorCheck } from "../system/model.ts";
import { qmpArgument, vmQmpSocket } from "./qmp-socket.ts";
import { doctorDomains } from "./doctor-domains.ts";
import { domainXmlParser } from "./virsh.ts";

type Node = Record<string, unknown>;
const obj = (v: unknown): Node => (v && typeof v === "object" && !Array.isArray(v) ? (v as Node) : {});
const arr = (v: unknown): Node[] => (Array.isArray(v) ? v.map(obj) : v === undefined ? [] : [obj(v)]);

/** The `-qmp` arguments of a domain's <qemu:commandline>. */
export function qmpArguments(xml: string): string[] {
  const d = obj(obj(domainXmlParser.parse(xml)).domain);
  const args = arr(obj(d["qemu:commandline"])["qemu:arg"]).map((a) => String(a["@_value"] ?? ""));
  return args.flatMap((a, i) => (a === "-qmp" && i + 1 < args.length ? [args[i + 1]!] : []));
}

export async function checkVmQmp(config: Config): Promise<DoctorCheck> {
  const base = { id: "vm-qmp", title: "VM input (QMP monitor sockets)" };
  const found = await doctorDomains(config);
  if ("error" in found) return { ...base, status: "warn", detail: `not checked: ${found.error}` };
  const { virsh, domains } = found;
  const problems: string[] = [];
  if (existsSync(config.qmpDir)) {
    const st = lstatSync(config.qmpDir);
    const owner = existsSync(config.libvirtQemuDir) ? statSync(config.libvirtQemuDir) : null;
    if (!st.isDirectory()) problems.push(`${config.qmpDir} is not a directory`);
    else {
      if (owner && (st.uid !== owner.uid || st.gid !== owner.gid))
        problems.push(`${config.qmpDir} belongs to ${st.uid}:${st.gid}, not to QEMU's user ${owner.uid}:${owner.gid} (vm start repairs it)`);
      if ((st.mode & 0o777) !== 0o750) problems.push(`${config.qmpDir} has mode 0${(st.mode & 0o777).toString(8)}, expected 0750`);
    }
  }
  let checked = 0;
  for (const [name, state] of domains) {
    let socket: string;
    try {
      socket = vmQmpSocket(config.qmpDir, name);
    } catch {
      problems.push(`${name}: its name cannot carry a QMP socket path`);
      continue;
    }
    checked++;
    const xml = await virsh.dumpxml(name, true).catch(() => "<domain/>");
    if (!qmpArguments(xml).includes(qmpArgument(socket))) {
      problems.push(`${name}: defined without the appliance's QMP monitor (${socket}): streaming clients' input cannot reach it`);
      continue;
    }
    if (state === "running" && !(existsSync(socket) && lstatSync(socket).isSocket())) problems.push(`${name}: running, but ${socket} is no socket`);
  }
  if (problems.length) return { ...base, status: "warn", detail: problems.join("; ") };
  return { ...base, status: "ok", detail: `${checked} VM(s) with their QMP monitor in ${config.qmpDir}` };
}
