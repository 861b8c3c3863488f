import { z } from "zod";
import { APP_KINDS } from "../db/schema.ts";

export const AppKind = z.enum(APP_KINDS);

const name = z.string().trim().min(1).max(100);
const command = z.string().min(1).max(4096);
const vmName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-' only, starting with a letter or digit");
const boxArtPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith("/"), "must be an absolute path");
const sortOrder = z.number().int().min(-1_000_000).max(1_000_000);

export const App = z
  .object({
    id: z.number().int(),
    name: z.string(),
    kind: AppKind,
    command: z.string().nullable(),
    vmName: z.string().nullable(),
    boxArtPath: z.string().nullable(),
    sortOrder: z.number().int(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "App" });
export type App = z.infer<typeof App>;

/** Which fields each kind needs: a VM app names its VM, a command app its command line. */
function kindRules(v: { kind?: string; command?: string | null; vmName?: string | null }, ctx: z.RefinementCtx) {
  if (v.kind === "vm" && !v.vmName) ctx.addIssue({ code: "custom", path: ["vmName"], message: "required for kind vm" });
  if (v.kind === "command" && !v.command)
    ctx.addIssue({ code: "custom", path: ["command"], message: "required for kind command" });
  if (v.kind === "desktop" && v.command)
    ctx.addIssue({ code: "custom", path: ["command"], message: "not allowed for kind desktop" });
  if (v.kind === "host-desktop" && v.command)
    ctx.addIssue({ code: "custom", path: ["command"], message: "not allowed for kind host-desktop" });
  if (v.kind === "host-desktop" && v.vmName)
    ctx.addIssue({ code: "custom", path: ["vmName"], message: "not allowed for kind host-desktop (it streams the host's own session)" });
}

export const AppCreate = z
  .strictObject({
    name,
    kind: AppKind,
    command: command.nullable().optional(),
    vmName: vmName.nullable().optional(),
    boxArtPath: boxArtPath.nullable().optional(),
    sortOrder: sortOrder.optional(),
  })
  .superRefine(kindRules)
  .meta({ id: "AppCreate" });
export type AppCreate = z.infer<typeof AppCreate>;

export const AppPatch = z
  .strictObject({
    name: name.optional(),
    kind: AppKind.optional(),
    command: command.nullable().optional(),
    vmName: vmName.nullable().optional(),
    boxArtPath: boxArtPath.nullable().optional(),
    sortOrder: sortOrder.optional(),
  })
  .refine((v) => Object.keys(v).length > 0, "at least one field must be given")
  .meta({ id: "AppPatch" });
export type AppPatch = z.infer<typeof AppPatch>;

export const AppIdParams = z.strictObject({
  id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
});

export const AppList = z.object({ apps: z.array(App) }).meta({ id: "AppList" });
export { kindRules };

/** Box art as uploaded by the console: a PNG, base64 (the API takes JSON bodies only). */
export const MAX_UPLOADED_BOXART_BYTES = 512 * 1024;
export const BoxArtUpload = z
  .strictObject({
    pngBase64: z
      .string()
      .min(12)
      .max(Math.ceil(MAX_UPLOADED_BOXART_BYTES / 3) * 4 + 4)
      .regex(/^[A-Za-z0-9+/]+={0,2}$/, "base64 of a PNG image"),
  })
  .meta({ id: "BoxArtUpload" });
