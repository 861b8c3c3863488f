/**
 * The host's language, keyboard layout and time zone, read from the target system's
 * configuration (systemd's locale.conf / vconsole.conf, Debian's default/keyboard and timezone,
 * the /etc/localtime link), in the forms Windows' answer file takes.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export interface WindowsLocale {
  /** e.g. en-US (UILanguage, SystemLocale, UserLocale). */
  language: string;
  /** e.g. 0409:00000409 (InputLocale: language id : keyboard layout id). */
  inputLocale: string;
  /** Windows time zone name, e.g. "W. Europe Standard Time". */
  timeZone: string;
  /** Where each value came from (for the step's result). */
  sources: { language: string; keyboard: string; timeZone: string };
}

function read(root: string, rel: string): string | null {
  try {
    return readFileSync(join(root, rel), "utf8").slice(0, 65536);
  } catch {
    return null;
  }
}

const shellVar = (text: string | null, name: string): string | null => {
  const m = new RegExp(`^\\s*${name}=["']?([^"'\\n]*)["']?\\s*$`, "m").exec(text ?? "");
  return m?.[1]?.trim() || null;
};

/** Keyboard layouts (X11 / console keymap name) → Windows input locale. */
const KEYBOARDS: Record<string, string> = {
  us: "0409:00000409",
  gb: "0809:00000809",
  uk: "0809:00000809",
  de: "0407:00000407",
  "de-latin1": "0407:00000407",
  "de-latin1-nodeadkeys": "0407:00000407",
  fr: "040c:0000040c",
  "fr-latin1": "040c:0000040c",
  es: "0c0a:0000040a",
  it: "0410:00000410",
  pt: "0816:00000816",
  br: "0416:00000416",
  "br-abnt2": "0416:00000416",
  nl: "0413:00020409",
  be: "080c:0000080c",
  ch: "0807:00000807",
  "de_CH-latin1": "0807:00000807",
  "fr_CH-latin1": "100c:0000100c",
  se: "041d:0000041d",
  "sv-latin1": "041d:0000041d",
  no: "0414:00000414",
  dk: "0406:00000406",
  fi: "040b:0000040b",
  pl: "0415:00000415",
  pl2: "0415:00000415",
  cz: "0405:00000405",
  hu: "040e:0000040e",
  ru: "0419:00000419",
  ua: "0422:00000422",
  tr: "041f:0000041f",
  jp: "0411:00000411",
  jp106: "0411:00000411",
  kr: "0412:00000412",
  latam: "080a:0000080a",
};

/** IANA zones → Windows time zone names (CLDR windowsZones); others fall back to UTC. */
const ZONES: Record<string, string> = {
  UTC: "UTC",
  "Etc/UTC": "UTC",
  "Europe/London": "GMT Standard Time",
  "Europe/Dublin": "GMT Standard Time",
  "Europe/Lisbon": "GMT Standard Time",
  "Europe/Berlin": "W. Europe Standard Time",
  "Europe/Amsterdam": "W. Europe Standard Time",
  "Europe/Vienna": "W. Europe Standard Time",
  "Europe/Zurich": "W. Europe Standard Time",
  "Europe/Rome": "W. Europe Standard Time",
  "Europe/Stockholm": "W. Europe Standard Time",
  "Europe/Oslo": "W. Europe Standard Time",
  "Europe/Paris": "Romance Standard Time",
  "Europe/Brussels": "Romance Standard Time",
  "Europe/Madrid": "Romance Standard Time",
  "Europe/Copenhagen": "Romance Standard Time",
  "Europe/Warsaw": "Central European Standard Time",
  "Europe/Prague": "Central Europe Standard Time",
  "Europe/Budapest": "Central Europe Standard Time",
  "Europe/Helsinki": "FLE Standard Time",
  "Europe/Kiev": "FLE Standard Time",
  "Europe/Kyiv": "FLE Standard Time",
  "Europe/Athens": "GTB Standard Time",
  "Europe/Istanbul": "Turkey Standard Time",
  "Europe/Moscow": "Russian Standard Time",
  "America/New_York": "Eastern Standard Time",
  "America/Toronto": "Eastern Standard Time",
  "America/Chicago": "Central Standard Time",
  "America/Denver": "Mountain Standard Time",
  "America/Phoenix": "US Mountain Standard Time",
  "America/Los_Angeles": "Pacific Standard Time",
  "America/Vancouver": "Pacific Standard Time",
  "America/Anchorage": "Alaskan Standard Time",
  "Pacific/Honolulu": "Hawaiian Standard Time",
  "America/Sao_Paulo": "E. South America Standard Time",
  "America/Mexico_City": "Central Standard Time (Mexico)",
  "Asia/Tokyo": "Tokyo Standard Time",
  "Asia/Seoul": "Korea Standard Time",
  "Asia/Shanghai": "China Standard Time",
  "Asia/Hong_Kong": "China Standard Time",
  "Asia/Singapore": "Singapore Standard Time",
  "Asia/Kolkata": "India Standard Time",
  "Asia/Dubai": "Arabian Standard Time",
  "Australia/Sydney": "AUS Eastern Standard Time",
  "Australia/Melbourne": "AUS Eastern Standard Time",
  "Australia/Brisbane": "E. Australia Standard Time",
  "Australia/Perth": "W. Australia Standard Time",
  "Pacific/Auckland": "New Zealand Standard Time",
};

/** The language of LANG=de_DE.UTF-8 → de-DE (en-US when unset, C or POSIX). */
export function windowsLanguage(lang: string | null): string | null {
  const m = /^([a-z]{2,3})_([A-Z]{2})/.exec(lang ?? "");
  return m ? `${m[1]}-${m[2]}` : null;
}

function ianaZone(root: string): { zone: string | null; source: string } {
  try {
    const target = readlinkSync(join(root, "etc", "localtime"));
    const m = /zoneinfo\/(.+)$/.exec(target);
    if (m) return { zone: m[1]!, source: "/etc/localtime" };
  } catch {
    /* not a link */
  }
  const tz = read(root, "etc/timezone")?.trim();
  if (tz) return { zone: tz, source: "/etc/timezone" };
  return { zone: null, source: "default" };
}

export function hostWindowsLocale(root: string): WindowsLocale {
  const localeConf = read(root, "etc/locale.conf");
  const debianLocale = read(root, "etc/default/locale");
  const lang = shellVar(localeConf, "LANG") ?? shellVar(debianLocale, "LANG");
  const language = windowsLanguage(lang) ?? "en-US";
  const keymap = shellVar(read(root, "etc/vconsole.conf"), "KEYMAP");
  const xkb = shellVar(read(root, "etc/default/keyboard"), "XKBLAYOUT")?.split(",")[0] ?? null;
  const kb = keymap ?? xkb;
  const inputLocale = (kb && KEYBOARDS[kb]) ?? "0409:00000409";
  const { zone, source } = ianaZone(root);
  const timeZone = (zone && ZONES[zone]) ?? "UTC";
  return {
    language,
    inputLocale,
    timeZone,
    sources: {
      language: lang ? `LANG=${lang} (${localeConf && shellVar(localeConf, "LANG") ? "/etc/locale.conf" : "/etc/default/locale"})` : "default",
      keyboard: kb ? `${keymap ? "KEYMAP" : "XKBLAYOUT"}=${kb}${KEYBOARDS[kb] ? "" : " (unknown to Windows: US layout)"}` : "default",
      timeZone: zone ? `${zone} (${source})${ZONES[zone] ? "" : " (not mapped: UTC)"}` : "default",
    },
  };
}
