/**
 * autounattend.xml for an unattended Windows 10/11 install into a VM of the appliance, after
 * Microsoft's unattend reference (components, passes and settings named there):
 *
 *   windowsPE   International-Core-WinPE (language, keyboard), PnpCustomizationsWinPE (virtio
 *               storage and network drivers from the virtio-win ISO, so Setup sees the virtio
 *               disk), Setup (GPT disk layout for UEFI, image, EULA, no product key prompt)
 *   specialize  Shell-Setup (computer name, time zone), Deployment (BypassNRO: OOBE without a
 *               network)
 *   oobeSystem  International-Core, Shell-Setup (OOBE pages hidden, a local administrator
 *               account, auto logon, first-logon commands: virtio guest tools, our agent, the
 *               IVSHMEM driver, the Looking Glass host)
 *
 * Windows 11's TPM 2.0 and Secure Boot come from the VM itself (swtpm, OVMF with enrolled keys):
 * nothing here bypasses those checks. Values are escaped by the XML library.
 */
import { serializeXml } from "../vm/xml.ts";
import type { WindowsLocale } from "./host-locale.ts";

export const UNATTEND_NS = "urn:schemas-microsoft-com:unattend";
export const WCM_NS = "http://schemas.microsoft.com/WMIConfig/2002/State";

/** Drive letters Setup may give the CD-ROMs (the install ISO, virtio-win, ours). */
const DRIVE_LETTERS = ["D", "E", "F", "G"];
/** virtio-win folders holding storage and network drivers. */
const VIRTIO_DRIVERS = ["viostor", "vioscsi", "NetKVM"];

/** Our ISO's folder and the script the first-logon commands call (it finds its own drive). */
export const SETUP_DIR = "neuron";
export const FIRST_LOGON_STEPS = ["virtio-tools", "agent", "ivshmem", "looking-glass"] as const;

export interface UnattendInput {
  template: "win11" | "win10";
  computerName: string;
  user: string;
  /** May be empty (a local account without password). */
  password: string;
  locale: WindowsLocale;
}

type Node = { [k: string]: unknown };
const attrs = (o: Record<string, string>): Node => Object.fromEntries(Object.entries(o).map(([k, v]) => [`@_${k}`, v]));
const component = (name: string, body: Node): Node => ({
  ...attrs({ name, processorArchitecture: "amd64", publicKeyToken: "31bf3856ad364e35", language: "neutral", versionScope: "nonSxS" }),
  ...body,
});
const add = (o: Node): Node => ({ ...attrs({ "wcm:action": "add" }), ...o });

/** Windows computer names: 15 characters, letters, digits and '-'. */
export function computerName(vm: string): string {
  const n = vm.replace(/[^A-Za-z0-9-]/g, "-").replace(/^-+/, "").slice(0, 15);
  return /^\d*$/.test(n) ? `NEURON-${n}`.slice(0, 15) : n;
}

/** The command one first-logon step runs: finds our ISO by its folder, then runs the step. */
export function firstLogonCommand(step: (typeof FIRST_LOGON_STEPS)[number]): string {
  return `cmd.exe /c "for %d in (${DRIVE_LETTERS.join(" ")} H I) do @if exist %d:\\${SETUP_DIR}\\setup.cmd call %d:\\${SETUP_DIR}\\setup.cmd ${step}"`;
}

export function unattendXml(input: UnattendInput): string {
  const { locale } = input;
  const version = input.template === "win11" ? "w11" : "w10";
  const paths = DRIVE_LETTERS.flatMap((d) => VIRTIO_DRIVERS.map((drv) => `${d}:\\${drv}\\${version}\\amd64`));
  const password = { Value: input.password, PlainText: "true" };
  const windowsPE: Node = {
    ...attrs({ pass: "windowsPE" }),
    component: [
      component("Microsoft-Windows-International-Core-WinPE", {
        SetupUILanguage: { UILanguage: locale.language },
        InputLocale: locale.inputLocale,
        SystemLocale: locale.language,
        UILanguage: locale.language,
        UserLocale: locale.language,
      }),
      component("Microsoft-Windows-PnpCustomizationsWinPE", {
        DriverPaths: { PathAndCredentials: paths.map((p, i) => ({ ...attrs({ "wcm:action": "add", "wcm:keyValue": String(i + 1) }), Path: p })) },
      }),
      component("Microsoft-Windows-Setup", {
        DiskConfiguration: {
          Disk: add({
            DiskID: "0",
            WillWipeDisk: "true",
            CreatePartitions: {
              CreatePartition: [
                add({ Order: "1", Type: "EFI", Size: "300" }),
                add({ Order: "2", Type: "MSR", Size: "16" }),
                add({ Order: "3", Type: "Primary", Extend: "true" }),
              ],
            },
            ModifyPartitions: {
              ModifyPartition: [
                add({ Order: "1", PartitionID: "1", Format: "FAT32", Label: "System" }),
                add({ Order: "2", PartitionID: "3", Format: "NTFS", Label: "Windows", Letter: "C" }),
              ],
            },
          }),
        },
        ImageInstall: {
          OSImage: {
            InstallTo: { DiskID: "0", PartitionID: "3" },
            InstallFrom: { MetaData: add({ Key: "/IMAGE/INDEX", Value: "1" }) },
          },
        },
        UserData: { AcceptEula: "true", ProductKey: { WillShowUI: "OnError" } },
      }),
    ],
  };
  const specialize: Node = {
    ...attrs({ pass: "specialize" }),
    component: [
      component("Microsoft-Windows-Shell-Setup", { ComputerName: input.computerName, TimeZone: locale.timeZone }),
      component("Microsoft-Windows-Deployment", {
        RunSynchronous: {
          RunSynchronousCommand: add({
            Order: "1",
            Path: "reg.exe add HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\OOBE /v BypassNRO /t REG_DWORD /d 1 /f",
            Description: "Set up Windows without a network connection or a Microsoft account",
          }),
        },
      }),
    ],
  };
  const descriptions: Record<(typeof FIRST_LOGON_STEPS)[number], string> = {
    "virtio-tools": "Install the virtio guest tools (drivers, QEMU guest agent)",
    agent: "Install the NeuronOS guest agent",
    ivshmem: "Install the IVSHMEM driver (Looking Glass shared memory)",
    "looking-glass": "Install the Looking Glass host",
  };
  const oobeSystem: Node = {
    ...attrs({ pass: "oobeSystem" }),
    component: [
      component("Microsoft-Windows-International-Core", {
        InputLocale: locale.inputLocale,
        SystemLocale: locale.language,
        UILanguage: locale.language,
        UserLocale: locale.language,
      }),
      component("Microsoft-Windows-Shell-Setup", {
        OOBE: {
          HideEULAPage: "true",
          HideOEMRegistrationScreen: "true",
          HideOnlineAccountScreens: "true",
          HideWirelessSetupInOOBE: "true",
          HideLocalAccountScreen: "true",
          ProtectYourPC: "3",
        },
        UserAccounts: {
          LocalAccounts: { LocalAccount: add({ Name: input.user, DisplayName: input.user, Group: "Administrators", Password: password }) },
        },
        AutoLogon: { Enabled: "true", Username: input.user, Password: password, LogonCount: "9999999" },
        FirstLogonCommands: {
          SynchronousCommand: FIRST_LOGON_STEPS.map((s, i) => add({ Order: String(i + 1), CommandLine: firstLogonCommand(s), Description: descriptions[s], RequiresUserInput: "false" })),
        },
        TimeZone: locale.timeZone,
      }),
    ],
  };
  const tree = {
    unattend: {
      ...attrs({ xmlns: UNATTEND_NS, "xmlns:wcm": WCM_NS }),
      settings: [windowsPE, specialize, oobeSystem],
    },
  };
  return `<?xml version="1.0" encoding="utf-8"?>\n${serializeXml(tree)}`;
}

/**
 * setup.cmd on our ISO: one step per call, each finding its installer on whichever CD-ROM holds
 * it, logging to C:\ProgramData\NeuronOS\setup.log; a missing installer is logged and skipped.
 */
export function setupCmd(): string {
  const lines = [
    "@echo off",
    "setlocal",
    "set here=%~dp0",
    "set log=%ProgramData%\\NeuronOS\\setup.log",
    'if not exist "%ProgramData%\\NeuronOS" mkdir "%ProgramData%\\NeuronOS"',
    "echo %date% %time% step %1 >> \"%log%\"",
    "goto step-%1",
    "",
    ":step-virtio-tools",
    "for %%d in (D E F G H I) do if exist %%d:\\virtio-win-guest-tools.exe (",
    '  start /wait "" %%d:\\virtio-win-guest-tools.exe /install /passive /norestart >> "%log%" 2>&1',
    "  goto end",
    ")",
    'echo virtio-win-guest-tools.exe not found >> "%log%"',
    "goto end",
    "",
    ":step-agent",
    'if not exist "%here%agent\\install-windows.ps1" (echo agent installer not on this disc >> "%log%" & goto end)',
    'powershell.exe -NoProfile -ExecutionPolicy Bypass -File "%here%agent\\install-windows.ps1" >> "%log%" 2>&1',
    "goto end",
    "",
    ":step-ivshmem",
    'for %%p in ("%here%ivshmem" D:\\ivshmem E:\\ivshmem F:\\ivshmem G:\\ivshmem) do if exist "%%~p\\ivshmem.inf" (',
    '  pnputil.exe /add-driver "%%~p\\ivshmem.inf" /install >> "%log%" 2>&1',
    "  goto end",
    ")",
    'echo ivshmem.inf not found >> "%log%"',
    "goto end",
    "",
    ":step-looking-glass",
    'if not exist "%here%looking-glass-host-setup.exe" (echo Looking Glass host installer not on this disc >> "%log%" & goto end)',
    'start /wait "" "%here%looking-glass-host-setup.exe" /S >> "%log%" 2>&1',
    "goto end",
    "",
    ":end",
    "endlocal",
    "",
  ];
  return lines.join("\r\n");
}
