/**
 * Doctor check for the VMs' displays: no defined VM may have SPICE or VNC on
 * TCP (neither has a password here: a TCP port, even on 127.0.0.1, lets any
 * local user drive the VM's keyboard and mouse). VMs the appliance defined
 * before its displays moved to unix sockets are named until they are
 * redefined. The socket directory must be QEMU's user's with the admin group,
 * mode 2750, and a running VM's sockets there must not be open to others.
 */
import { existsSync, lstatSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config.ts";
import type { DoctorCheck } from "../system/model.ts";
import { graphicsDirOwner, graphicsListens } from "./graphics-socket.ts";
import { doctorDomains } from "./doctor-domains.ts";

const octal = (m: number) => `0${m.toString(8)}`;

export async function checkVmGraphics(config: Config, groupFile = join(config.etcDir, "group")): Promise<DoctorCheck> {
  const base = { id: "vm-graphics", title: "VM displays (SPICE/VNC on unix sockets)" };
  const found = await doctorDomains(config);
  if ("error" in found) return { ...base, status: "warn", detail: `not checked: ${found.error}` };
  const { virsh, domains } = found;
  const owner = graphicsDirOwner(config.libvirtQemuDir, config.adminGroup, groupFile);
  const problems: string[] = [];
  const notes: string[] = [];
  if (owner.group === null) notes.push(`group ${config.adminGroup} (config adminGroup) does not exist: only root reaches the display sockets, looking-glass-client gets no SPICE input`);
  if (existsSync(config.spiceDir)) {
    const st = lstatSync(config.spiceDir);
    if (!st.isDirectory()) problems.push(`${config.spiceDir} is not a directory`);
    else {
      if (st.uid !== owner.uid || st.gid !== owner.gid)
        problems.push(`${config.spiceDir} belongs to ${st.uid}:${st.gid}, expected ${owner.uid}:${owner.gid} (QEMU's user, ${owner.group ?? "QEMU's group"}; vm start repairs it)`);
      if ((st.mode & 0o7777) !== owner.mode) problems.push(`${config.spiceDir} has mode ${octal(st.mode & 0o7777)}, expected ${octal(owner.mode)} (vm start repairs it)`);
    }
  }
  let sockets = 0;
  for (const [name, state] of domains) {
    const inactive = await virsh.dumpxml(name, true).catch(() => "<domain/>");
    for (const g of graphicsListens(inactive))
      if (g.tcp.length) problems.push(`${name}: ${g.type.toUpperCase()} listens on TCP (${g.tcp.join(", ")}) without a password: redefine the VM (its display then uses a unix socket in ${config.spiceDir})`);
    if (state !== "running") continue;
    const live = await virsh.dumpxml(name).catch(() => "<domain/>");
    for (const path of graphicsListens(live).flatMap((g) => g.sockets)) {
      if (dirname(path) !== config.spiceDir) continue;
      sockets++;
      const st = existsSync(path) ? lstatSync(path) : null;
      if (!st?.isSocket()) problems.push(`${name}: running, but ${path} is no socket`);
      else if ((st.mode & 0o007) !== 0 || st.gid !== owner.gid)
        problems.push(`${name}: ${path} is ${octal(st.mode & 0o7777)} ${st.uid}:${st.gid}, expected ${octal(owner.socketMode)} group ${owner.gid} (vm start sets it)`);
    }
  }
  const tail = notes.length ? `; ${notes.join("; ")}` : "";
  if (problems.length) return { ...base, status: "warn", detail: problems.join("; ") + tail };
  return { ...base, status: notes.length ? "warn" : "ok", detail: `no display on TCP; ${sockets} running display socket(s) in ${config.spiceDir}${tail}` };
}
