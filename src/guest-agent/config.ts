/**
 * The in-guest agent's settings: a JSON file (--config) over per-OS defaults.
 * Every OS integration is an argv (never a shell line built from input):
 * placeholders {width} {height} {display} are replaced as whole arguments.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { AGENT_PORT_NAME } from "../guest/model.ts";

const argv = z.array(z.string().min(1).max(4096)).min(1).max(64);

export const AgentConfigSchema = z.strictObject({
  /** The virtio-serial port; default: found by name under /sys/class/virtio-ports (Linux) or the Global namespace (Windows). */
  port: z.string().min(1).max(4096).optional(),
  /** Directory holding ca.crt, guest.crt, guest.key provisioned by the host; null = plain frames (debugging only). */
  certDir: z.string().min(1).max(4096).nullable(),
  maxFrameBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  /** How often the clipboard and the displays are polled for changes (0 = never). */
  pollMs: z.number().int().min(0).max(60_000).default(1000),
  /** How long one OS command may run. */
  commandTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  /** The folder of the users' profiles served read-only to the host's data migration (fs_* commands); null = none. */
  usersDir: z.string().min(1).max(4096).nullable().default(null),
  commands: z
    .strictObject({
      clipboardGetText: argv.nullable(),
      clipboardSetText: argv.nullable(),
      clipboardGetImage: argv.nullable(),
      clipboardSetImage: argv.nullable(),
      /** Prints one display per line: NAME WIDTHxHEIGHT [primary]. */
      displays: argv.nullable(),
      setResolution: argv.nullable(),
      /** Writes a PNG to stdout. */
      screenshot: argv.nullable(),
      poweroff: argv.nullable(),
      reboot: argv.nullable(),
    })
    .partial()
    .default({}),
});
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
export type AgentCommands = Required<{ [K in keyof z.output<typeof AgentConfigSchema>["commands"]]: string[] | null }>;
export type AgentConfig = Omit<z.output<typeof AgentConfigSchema>, "commands"> & { commands: AgentCommands };

const XRANDR_LIST = [
  "sh",
  "-c",
  "xrandr --current | awk '/ connected/ { p = ($3 == \"primary\") ? \" primary\" : \"\"; for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+x[0-9]+\\+/) { split($i, a, \"+\"); print $1, a[1] p; break } }'",
];

const PS = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command"];

/** PowerShell: the primary screen as PNG on stdout. */
const WIN_SCREENSHOT =
  "Add-Type -AssemblyName System.Windows.Forms,System.Drawing; $b = [System.Windows.Forms.Screen]::PrimaryScreen.Bounds; " +
  "$bmp = New-Object System.Drawing.Bitmap $b.Width, $b.Height; $g = [System.Drawing.Graphics]::FromImage($bmp); " +
  "$g.CopyFromScreen($b.Location, [System.Drawing.Point]::Empty, $b.Size); $ms = New-Object System.IO.MemoryStream; " +
  "$bmp.Save($ms, [System.Drawing.Imaging.ImageFormat]::Png); $o = [Console]::OpenStandardOutput(); $ms.WriteTo($o); $o.Flush()";

/**
 * PowerShell: ChangeDisplaySettingsEx on a display. -Command joins trailing
 * arguments into the script, so the values are substituted into it: width and
 * height are integers and display names are restricted to [A-Za-z0-9_.:\\-]
 * (model.ts), so nothing can break out of the quoted string.
 */
const WIN_SET_RESOLUTION =
  "$w = [int]'{width}'; $h = [int]'{height}'; $d = '{display}'; " +
  "Add-Type -TypeDefinition 'using System; using System.Runtime.InteropServices; " +
  "[StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)] public struct DEVMODE { " +
  "[MarshalAs(UnmanagedType.ByValTStr, SizeConst = 32)] public string dmDeviceName; public short dmSpecVersion; public short dmDriverVersion; " +
  "public short dmSize; public short dmDriverExtra; public int dmFields; public int dmPositionX; public int dmPositionY; public int dmDisplayOrientation; " +
  "public int dmDisplayFixedOutput; public short dmColor; public short dmDuplex; public short dmYResolution; public short dmTTOption; public short dmCollate; " +
  "[MarshalAs(UnmanagedType.ByValTStr, SizeConst = 32)] public string dmFormName; public short dmLogPixels; public int dmBitsPerPel; public int dmPelsWidth; " +
  "public int dmPelsHeight; public int dmDisplayFlags; public int dmDisplayFrequency; public int dmICMMethod; public int dmICMIntent; public int dmMediaType; " +
  "public int dmDitherType; public int dmReserved1; public int dmReserved2; public int dmPanningWidth; public int dmPanningHeight; } " +
  "public static class Disp { [DllImport(\"user32.dll\", CharSet = CharSet.Unicode)] public static extern bool EnumDisplaySettings(string dev, int mode, ref DEVMODE dm); " +
  "[DllImport(\"user32.dll\", CharSet = CharSet.Unicode)] public static extern int ChangeDisplaySettingsEx(string dev, ref DEVMODE dm, IntPtr hwnd, int flags, IntPtr param); }'; " +
  "$dev = if ($d) { $d } else { $null }; $dm = New-Object DEVMODE; $dm.dmSize = [System.Runtime.InteropServices.Marshal]::SizeOf($dm); " +
  "if (-not [Disp]::EnumDisplaySettings($dev, -1, [ref]$dm)) { throw 'cannot read the display mode' }; " +
  "$dm.dmPelsWidth = $w; $dm.dmPelsHeight = $h; $dm.dmFields = 0x180000; " +
  "$r = [Disp]::ChangeDisplaySettingsEx($dev, [ref]$dm, [IntPtr]::Zero, 1, [IntPtr]::Zero); if ($r -ne 0) { throw \"ChangeDisplaySettingsEx returned $r\" }";

export function defaultCommands(platform: NodeJS.Platform, env: Record<string, string | undefined>): AgentCommands {
  if (platform === "win32")
    return {
      clipboardGetText: [...PS, "[Console]::OutputEncoding=[Text.Encoding]::UTF8; Get-Clipboard -Raw"],
      clipboardSetText: [...PS, "[Console]::InputEncoding=[Text.Encoding]::UTF8; Set-Clipboard -Value ([Console]::In.ReadToEnd())"],
      clipboardGetImage: null,
      clipboardSetImage: null,
      displays: [
        ...PS,
        "Add-Type -AssemblyName System.Windows.Forms; [System.Windows.Forms.Screen]::AllScreens | % { '{0} {1}x{2}{3}' -f $_.DeviceName, $_.Bounds.Width, $_.Bounds.Height, $(if ($_.Primary) {' primary'} else {''}) }",
      ],
      setResolution: [...PS, WIN_SET_RESOLUTION],
      screenshot: [...PS, WIN_SCREENSHOT],
      poweroff: ["shutdown.exe", "/s", "/t", "0"],
      reboot: ["shutdown.exe", "/r", "/t", "0"],
    };
  const wayland = !!env.WAYLAND_DISPLAY;
  return {
    clipboardGetText: wayland ? ["wl-paste", "--no-newline"] : ["xclip", "-selection", "clipboard", "-o"],
    clipboardSetText: wayland ? ["wl-copy"] : ["xclip", "-selection", "clipboard", "-i"],
    clipboardGetImage: wayland ? ["wl-paste", "--type", "image/png"] : ["xclip", "-selection", "clipboard", "-t", "image/png", "-o"],
    clipboardSetImage: wayland ? ["wl-copy", "--type", "image/png"] : ["xclip", "-selection", "clipboard", "-t", "image/png", "-i"],
    displays: wayland ? null : XRANDR_LIST,
    setResolution: wayland ? null : ["xrandr", "--output", "{display}", "--mode", "{width}x{height}"],
    screenshot: wayland ? ["grim", "-"] : ["import", "-window", "root", "png:-"],
    poweroff: ["poweroff"],
    reboot: ["reboot"],
  };
}

export function defaultPort(platform: NodeJS.Platform, sysRoot = "/sys"): string {
  if (platform === "win32") return `\\\\.\\Global\\${AGENT_PORT_NAME}`;
  const linkPath = `/dev/virtio-ports/${AGENT_PORT_NAME}`;
  if (existsSync(linkPath)) return linkPath;
  // No udev (minimal guests): find the port by name.
  const cls = join(sysRoot, "class", "virtio-ports");
  try {
    for (const entry of readdirSync(cls)) {
      const name = readFileSync(join(cls, entry, "name"), "utf8").trim();
      if (name === AGENT_PORT_NAME) return `/dev/${entry}`;
    }
  } catch {
    // fall through
  }
  return linkPath;
}

export function loadAgentConfig(
  input: unknown,
  platform: NodeJS.Platform = process.platform,
  env: Record<string, string | undefined> = process.env,
): AgentConfig {
  const parsed = AgentConfigSchema.parse(input);
  return { ...parsed, commands: { ...defaultCommands(platform, env), ...parsed.commands } as AgentCommands };
}

export function readAgentConfigFile(path: string): unknown {
  return JSON.parse(readFileSync(path, "utf8"));
}
