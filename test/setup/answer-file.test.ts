/**
 * autounattend.xml: the golden file, every element checked against the schema of the used
 * components and passes (test/fixtures/setup/unattend-schema.ts), the host's locale read from a
 * target root, and the ISO built by xorriso read back.
 */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { XMLParser } from "fast-xml-parser";
import { answerMedia, ANSWER_VOLUME_ID } from "../../src/setup/answer-media.ts";
import { hostWindowsLocale } from "../../src/setup/host-locale.ts";
import { computerName, unattendXml } from "../../src/setup/unattend.ts";
import { COMPONENT_ATTRIBUTES, COMPONENTS, PASSES, UNATTEND_NS, WCM_NS, type Setting } from "../fixtures/setup/unattend-schema.ts";
import { REPO_ROOT, tempDir } from "../helpers/env.ts";

const GOLDEN = join(REPO_ROOT, "test", "fixtures", "setup", "autounattend-win11.xml");
const locale = { language: "de-DE", inputLocale: "0407:00000407", timeZone: "W. Europe Standard Time", sources: { language: "", keyboard: "", timeZone: "" } };
const sample = () => unattendXml({ template: "win11", computerName: "WINDOWS", user: "anna", password: "p<&>w", locale });

type Node = Record<string, unknown>;
const arr = (v: unknown): Node[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]) as Node[];

/** Every problem of `xml` against the schema of the used elements. */
export function schemaProblems(xml: string): string[] {
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@_", parseTagValue: false, trimValues: true }).parse(xml) as Node;
  const out: string[] = [];
  const u = doc.unattend as Node | undefined;
  if (!u) return ["no <unattend> root"];
  if (u["@_xmlns"] !== UNATTEND_NS) out.push(`unattend xmlns is ${String(u["@_xmlns"])}`);
  if (u["@_xmlns:wcm"] !== WCM_NS) out.push(`unattend xmlns:wcm is ${String(u["@_xmlns:wcm"])}`);
  const walk = (el: Node, spec: Record<string, Setting>, path: string) => {
    for (const [k, v] of Object.entries(el)) {
      if (k.startsWith("@_")) continue;
      const s = spec[k];
      if (!s) {
        out.push(`${path}/${k}: not a setting of this component`);
        continue;
      }
      const items = arr(v);
      if (items.length > 1 && (s.leaf || !s.list)) out.push(`${path}/${k}: may appear once`);
      items.forEach((item, i) => {
        if (s.leaf) {
          const text = typeof item === "string" ? item : ((item as Node)?.["#text"] as string | undefined) ?? "";
          if (typeof item === "object" && item !== null && Object.keys(item).some((x) => !x.startsWith("@_") && x !== "#text")) out.push(`${path}/${k}: a leaf with children`);
          if (s.values && !s.values.test(text)) out.push(`${path}/${k}: value ${JSON.stringify(text)} not allowed`);
        } else {
          if (typeof item !== "object") return out.push(`${path}/${k}: must hold settings`);
          if (s.list && item["@_wcm:action"] !== "add") out.push(`${path}/${k}[${i}]: a list item needs wcm:action="add"`);
          if (s.keyed && !item["@_wcm:keyValue"]) out.push(`${path}/${k}[${i}]: needs wcm:keyValue`);
          walk(item, s.children, `${path}/${k}`);
        }
      });
    }
  };
  const seen = new Set<string>();
  for (const settings of arr(u.settings)) {
    const pass = settings["@_pass"] as string;
    if (!(PASSES as readonly string[]).includes(pass)) out.push(`settings pass ${pass} unknown`);
    if (seen.has(pass)) out.push(`pass ${pass} twice`);
    seen.add(pass);
    for (const c of arr(settings.component)) {
      const name = c["@_name"] as string;
      const def = COMPONENTS[name];
      if (!def) {
        out.push(`${pass}: component ${name} not in the schema`);
        continue;
      }
      if (!(def.passes as string[]).includes(pass)) out.push(`${name} is not valid in ${pass}`);
      for (const [a, re] of Object.entries(COMPONENT_ATTRIBUTES)) if (!re.test(String(c[`@_${a}`] ?? ""))) out.push(`${pass}/${name}: ${a}=${String(c[`@_${a}`])}`);
      walk(c, def.settings, `${pass}/${name}`);
    }
  }
  return out;
}

describe("autounattend.xml", () => {
  test("matches the golden file and every element is in the schema of the used components", () => {
    const xml = sample();
    // UPDATE_GOLDEN=1 rewrites the golden file after a deliberate change
    if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, xml);
    expect(xml).toBe(readFileSync(GOLDEN, "utf8"));
    expect(schemaProblems(xml)).toEqual([]);
    const r = Bun.spawnSync(["xmllint", "--noout", "-"], { stdin: Buffer.from(xml), stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
  });

  test("the schema check catches what Windows Setup would reject", () => {
    const xml = sample();
    expect(schemaProblems(xml.replace("<WillShowUI>OnError</WillShowUI>", "<WillShowUI>Sometimes</WillShowUI>"))).toEqual([
      'windowsPE/Microsoft-Windows-Setup/UserData/ProductKey/WillShowUI: value "Sometimes" not allowed',
    ]);
    expect(schemaProblems(xml.replace("<HideEULAPage>", "<SkipEverything>x</SkipEverything><HideEULAPage>"))).toEqual([
      "oobeSystem/Microsoft-Windows-Shell-Setup/OOBE/SkipEverything: not a setting of this component",
    ]);
    expect(schemaProblems(xml.replace('<settings pass="specialize">', '<settings pass="windowsPE2">')).some((p) => p.includes("windowsPE2"))).toBe(true);
  });

  test("what the install needs: drivers in windowsPE, no network in OOBE, a local account, the four first-logon installs; values escaped", () => {
    const xml = sample();
    for (const d of ["viostor", "vioscsi", "NetKVM"]) expect(xml).toContain(`E:\\${d}\\w11\\amd64`);
    expect(xml).toContain("BypassNRO");
    expect(xml).toContain("<Name>anna</Name>");
    expect(xml).toContain("<Value>p&lt;&amp;&gt;w</Value>");
    for (const s of ["virtio-tools", "agent", "ivshmem", "looking-glass"]) expect(xml).toContain(`setup.cmd ${s}&quot;`);
    expect(xml).not.toMatch(/BypassTPMCheck|BypassSecureBootCheck/);
    expect(unattendXml({ template: "win10", computerName: "W", user: "u", password: "", locale })).toContain("\\viostor\\w10\\amd64");
    expect(computerName("my_windows.vm-with-a-long-name")).toBe("my-windows-vm-w");
    expect(computerName("123")).toBe("NEURON-123");
  });

  test("locale, keyboard and time zone come from the target root's configuration", () => {
    const d = tempDir();
    try {
      mkdirSync(join(d.path, "etc"), { recursive: true });
      writeFileSync(join(d.path, "etc", "locale.conf"), "LANG=fr_FR.UTF-8\n");
      writeFileSync(join(d.path, "etc", "vconsole.conf"), "KEYMAP=fr-latin1\n");
      symlinkSync("/usr/share/zoneinfo/Europe/Paris", join(d.path, "etc", "localtime"));
      expect(hostWindowsLocale(d.path)).toMatchObject({ language: "fr-FR", inputLocale: "040c:0000040c", timeZone: "Romance Standard Time" });
      const deb = join(d.path, "deb");
      mkdirSync(join(deb, "etc", "default"), { recursive: true });
      writeFileSync(join(deb, "etc", "default", "locale"), 'LANG="de_DE.UTF-8"\n');
      writeFileSync(join(deb, "etc", "default", "keyboard"), 'XKBLAYOUT="de"\nXKBVARIANT=""\n');
      writeFileSync(join(deb, "etc", "timezone"), "Europe/Berlin\n");
      expect(hostWindowsLocale(deb)).toMatchObject({ language: "de-DE", inputLocale: "0407:00000407", timeZone: "W. Europe Standard Time" });
      expect(hostWindowsLocale(join(d.path, "none"))).toMatchObject({ language: "en-US", inputLocale: "0409:00000409", timeZone: "UTC" });
    } finally {
      d.cleanup();
    }
  });

  test.skipIf(!Bun.which("xorriso"))("the ISO is built and read back: autounattend.xml at its root, the agent, certificates and installers under neuron/ (skipped: xorriso not installed)", async () => {
    const d = tempDir();
    try {
      const target = join(d.path, "target");
      mkdirSync(join(target, "etc"), { recursive: true });
      writeFileSync(join(target, "etc", "locale.conf"), "LANG=de_DE.UTF-8\n");
      const agentExe = join(d.path, "neuron-agent.exe");
      writeFileSync(agentExe, "MZ agent");
      const lg = join(d.path, "looking-glass-host-setup.exe");
      writeFileSync(lg, "MZ lg");
      const build = answerMedia({ stateDir: join(d.path, "state"), targetRoot: target, xorriso: "xorriso", openssl: "openssl", guestAgentExe: agentExe });
      const ivshmem = join(d.path, "ivshmem");
      mkdirSync(ivshmem);
      writeFileSync(join(ivshmem, "ivshmem.inf"), "[Version]\r\n");
      writeFileSync(join(ivshmem, "ivshmem.sys"), "MZ");
      const r = await build({ vmName: "win", template: "win11", user: "anna", password: "", lookingGlassInstaller: lg, ivshmemDriver: ivshmem, resolution: { width: 1920, height: 1080 } });
      expect(r.files).toContain("autounattend.xml");
      const out = join(d.path, "out");
      execFileSync("xorriso", ["-osirrox", "on", "-indev", r.path, "-extract", "/", out], { stdio: "pipe" });
      const xml = readFileSync(join(out, "autounattend.xml"), "utf8");
      expect(xml).toContain("<UILanguage>de-DE</UILanguage>");
      expect(schemaProblems(xml)).toEqual([]);
      expect(readFileSync(join(out, "neuron", "agent", "neuron-agent.exe"), "utf8")).toBe("MZ agent");
      expect(readFileSync(join(out, "neuron", "looking-glass-host-setup.exe"), "utf8")).toBe("MZ lg");
      expect(readFileSync(join(out, "neuron", "agent", "install-windows.ps1"), "utf8")).toContain("neuron-agent.exe");
      expect(readFileSync(join(out, "neuron", "agent", "guest.crt"), "utf8")).toContain("BEGIN CERTIFICATE");
      expect(readFileSync(join(out, "neuron", "setup.cmd"), "utf8")).toContain(":step-ivshmem");
      expect(readFileSync(join(out, "neuron", "ivshmem", "ivshmem.inf"), "utf8")).toBe("[Version]\r\n");
      const pvd = execFileSync("xorriso", ["-indev", r.path, "-pvd_info"], { stdio: "pipe" }).toString();
      expect(pvd).toContain(ANSWER_VOLUME_ID);
      // building again gives the same file list (and replaces the ISO whole)
      expect((await build({ vmName: "win", template: "win11", user: "anna", password: "", resolution: { width: 1920, height: 1080 } })).files).not.toContain("neuron/looking-glass-host-setup.exe");
    } finally {
      d.cleanup();
    }
  });
});
