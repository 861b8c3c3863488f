/**
 * What moves, in USMT's spirit: a declarative table. Each rule names a source pattern under a
 * Windows profile (segments matched without case; `*` matches one segment and is captured as
 * $1, $2, ...), where it goes under the Linux home (`{xdg:KEY}` for the XDG user directories),
 * what to include and exclude (globs relative to the matched path), a transform, permissions
 * and its fidelity. The planner (plan.ts) expands it; nothing here touches a file.
 */
import type { Category, Fidelity } from "./model.ts";

export type TransformName = "gitconfig" | "ssh" | "firefox-profiles-ini" | "chromium-preferences";

export interface Rule {
  id: string;
  category: Category;
  /** Words; $1.. are replaced with the captured segments. */
  label: string;
  from: string;
  to: string;
  /** For patterns with `*`: the matched folder must hold this file (e.g. a browser profile's Preferences). */
  when?: string;
  include?: string[];
  exclude?: string[];
  transform?: TransformName;
  perms: { file: number; dir: number };
  fidelity: Fidelity;
  why?: string;
  /** The item is a list of things to reinstall, read from the matched folder; no file is copied. */
  reinstall?: "vscode-extension" | "chromium-extension";
  /** The files cannot move (encrypted to Windows); the item lists them and offers the live path. */
  livePath?: { command: string; hint: string };
}

/** Never copied from anywhere: Windows' own bookkeeping. */
export const GLOBAL_EXCLUDES = ["**/desktop.ini", "**/Thumbs.db", "**/ehthumbs.db", "**/ehthumbs_vista.db", "**/~$*", "**/$RECYCLE.BIN/**", "**/*.tmp"];

const HOME = { file: 0o644, dir: 0o755 };
const PRIVATE = { file: 0o600, dir: 0o700 };

const XDG: [string, string, string][] = [
  ["documents", "Documents", "DOCUMENTS"],
  ["pictures", "Pictures", "PICTURES"],
  ["music", "Music", "MUSIC"],
  ["videos", "Videos", "VIDEOS"],
  ["desktop", "Desktop", "DESKTOP"],
  ["downloads", "Downloads", "DOWNLOAD"],
];

const CHROMIUM: { id: string; name: string; from: string; to: string }[] = [
  { id: "chrome", name: "Chrome", from: "AppData/Local/Google/Chrome/User Data", to: ".config/google-chrome" },
  { id: "edge", name: "Edge", from: "AppData/Local/Microsoft/Edge/User Data", to: ".config/microsoft-edge" },
  { id: "brave", name: "Brave", from: "AppData/Local/BraveSoftware/Brave-Browser/User Data", to: ".config/BraveSoftware/Brave-Browser" },
  { id: "vivaldi", name: "Vivaldi", from: "AppData/Local/Vivaldi/User Data", to: ".config/vivaldi" },
];

const DPAPI_WHY =
  "encrypted for this Windows user (DPAPI, and App-Bound Encryption since Chrome 127): it cannot be decrypted from a disk, only inside the running Windows session";

function chromiumRules(b: (typeof CHROMIUM)[number]): Rule[] {
  const p = `${b.from}/*`;
  const t = `${b.to}/$1`;
  const live = { command: `neuron-appliance migrate plan --from-vm VM`, hint: `export the ${b.name} passwords from inside Windows (${b.name} → Settings → Passwords → Export), or migrate from the running Windows VM, where the agent reads them as the logged-in user` };
  return [
    { id: `${b.id}.bookmarks`, category: "browser", label: `${b.name} profile $1: bookmarks`, from: p, when: "Preferences", to: t, include: ["Bookmarks", "Bookmarks.bak"], perms: PRIVATE, fidelity: "exact" },
    { id: `${b.id}.history`, category: "browser", label: `${b.name} profile $1: history`, from: p, when: "Preferences", to: t, include: ["History", "History-journal", "Favicons", "Favicons-journal", "Top Sites", "Top Sites-journal", "Shortcuts", "Shortcuts-journal", "Visited Links"], perms: PRIVATE, fidelity: "exact" },
    { id: `${b.id}.preferences`, category: "browser", label: `${b.name} profile $1: preferences`, from: p, when: "Preferences", to: t, include: ["Preferences"], transform: "chromium-preferences", perms: PRIVATE, fidelity: "translated", why: "Windows download and save folders are rewritten to the Linux ones" },
    { id: `${b.id}.extensions`, category: "browser", label: `${b.name} profile $1: extensions`, from: `${p}/Extensions`, to: `${t}/Extensions`, reinstall: "chromium-extension", perms: PRIVATE, fidelity: "reinstall", why: "extensions are reinstalled from the store by their ID (the Windows copies hold platform files)" },
    { id: `${b.id}.passwords`, category: "secrets", label: `${b.name} profile $1: saved passwords`, from: p, when: "Preferences", to: t, include: ["Login Data", "Login Data For Account"], perms: PRIVATE, fidelity: "cannot", why: DPAPI_WHY, livePath: live },
    { id: `${b.id}.cookies`, category: "secrets", label: `${b.name} profile $1: cookies (logins to websites)`, from: p, when: "Preferences", to: t, include: ["Cookies", "Network/Cookies"], perms: PRIVATE, fidelity: "cannot", why: DPAPI_WHY, livePath: { ...live, hint: "sign in to websites again, or migrate from the running Windows VM" } },
  ];
}

export const RULES: Rule[] = [
  ...XDG.map(([id, folder, key]): Rule => ({
    id: `xdg.${id}`,
    category: "documents",
    label: `${folder} folder`,
    from: folder,
    to: `{xdg:${key}}`,
    exclude: ["My Music", "My Pictures", "My Videos", "**/*.lnk"],
    perms: HOME,
    fidelity: "exact",
  })),
  ...CHROMIUM.flatMap(chromiumRules),
  { id: "firefox.profile", category: "browser", label: "Firefox profile $1 (bookmarks, history, passwords, settings)", from: "AppData/Roaming/Mozilla/Firefox/Profiles/*", to: ".mozilla/firefox/$1", exclude: ["cache2/**", "startupCache/**", "crashes/**", "minidumps/**", "parent.lock", "lock", ".parentlock", "*.sqlite-wal", "*.sqlite-shm", "safebrowsing/**", "storage/temporary/**", "thumbnails/**"], perms: PRIVATE, fidelity: "exact" },
  { id: "firefox.profiles-ini", category: "browser", label: "Firefox profile list (profiles.ini)", from: "AppData/Roaming/Mozilla/Firefox/profiles.ini", to: ".mozilla/firefox/profiles.ini", transform: "firefox-profiles-ini", perms: HOME, fidelity: "translated", why: "profile paths are rewritten from Profiles/NAME to NAME, Windows install sections dropped" },
  { id: "vscode.settings", category: "editor", label: "VS Code settings, keybindings and snippets", from: "AppData/Roaming/Code/User", to: ".config/Code/User", include: ["settings.json", "keybindings.json", "snippets/**"], perms: HOME, fidelity: "exact" },
  { id: "vscode.extensions", category: "editor", label: "VS Code extensions", from: ".vscode/extensions", to: ".vscode/extensions", reinstall: "vscode-extension", perms: HOME, fidelity: "reinstall", why: "extensions are reinstalled by ID (`code --install-extension`): native parts are built for Windows" },
  { id: "git.config", category: "git", label: "Git settings (.gitconfig)", from: ".gitconfig", to: ".gitconfig", transform: "gitconfig", perms: HOME, fidelity: "translated", why: "Windows-only values rewritten: core.autocrlf, credential.helper=manager, core.sshCommand to ssh.exe, C:/ paths" },
  { id: "ssh", category: "ssh", label: "SSH keys and settings (.ssh)", from: ".ssh", to: ".ssh", transform: "ssh", perms: PRIVATE, fidelity: "translated", why: "permissions set (0700, keys 0600, .pub 0644), CRLF turned to LF in config and known_hosts" },
  { id: "npm.config", category: "config", label: "npm settings (.npmrc)", from: ".npmrc", to: ".npmrc", perms: { file: 0o600, dir: 0o700 }, fidelity: "exact" },
  { id: "fonts", category: "fonts", label: "Fonts installed for this user", from: "AppData/Local/Microsoft/Windows/Fonts", to: ".local/share/fonts", include: ["*.ttf", "*.otf", "*.ttc", "*.TTF", "*.OTF", "*.TTC", "*.woff", "*.woff2"], perms: HOME, fidelity: "exact" },
];

/** A glob (`**`, `*`, `?`; `/`-separated) as a case-insensitive regular expression over relative paths. */
export function globRegex(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      if (glob[i + 2] === "/") {
        re += "(?:.*/)?";
        i += 2;
      } else {
        re += ".*";
        i += 1;
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "i");
}

export interface Matcher {
  (rel: string): boolean;
}

/** True when rel (or a folder above it) matches one of the globs. */
export function matcher(globs: string[] | undefined): Matcher | null {
  if (!globs?.length) return null;
  const res = globs.map(globRegex);
  return (rel) => {
    const parts = rel.split("/");
    for (let n = parts.length; n >= 1; n--) {
      const p = parts.slice(0, n).join("/");
      if (res.some((r) => r.test(p))) return true;
    }
    return false;
  };
}
