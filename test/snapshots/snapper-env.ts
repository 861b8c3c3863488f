/**
 * snapper in a mount namespace: a wrapper the appliance runs as bin.snapper,
 * which bind-mounts the test's own /etc/snapper/configs and /etc/default/snapper
 * (snapper writes the host's /etc even with --root) in a fresh `unshare -m`.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sh } from "../updates/fixture.ts";

export function snapperMissing(): string | null {
  if (sh(["sh", "-c", "command -v snapper && command -v unshare"], { allowFail: true }).code !== 0) return "snapper or unshare is not installed (npm run setup installs snapper)";
  if (!existsSync("/etc/snapper/configs") || !existsSync("/etc/default/snapper")) return "snapper's /etc/snapper/configs or /etc/default/snapper is missing (bind-mount targets)";
  return null;
}

/** Creates the wrapper and a snapper config `name` for `subvolume`; returns the wrapper's path. */
export function snapperFor(dir: string, name: string, subvolume: string): string {
  mkdirSync(join(dir, "snapper-configs"), { recursive: true });
  writeFileSync(join(dir, "snapper-default"), 'SNAPPER_CONFIGS=""\n');
  const wrapper = join(dir, "snapper");
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec unshare -m sh -c 'mount --bind "$0/snapper-configs" /etc/snapper/configs && mount --bind "$0/snapper-default" /etc/default/snapper && exec snapper "$@"' '${dir}' "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  sh([wrapper, "--no-dbus", "-c", name, "create-config", "-f", "btrfs", subvolume]);
  return wrapper;
}
