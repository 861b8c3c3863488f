/** The app catalog: what the stream host lists (/applist) and the GUI edits. */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppError, conflict, invalid, notFound } from "../errors.ts";
import type { AppRow, AppsRepo } from "../db/repos/apps.ts";
import { isPng } from "../gamestream/boxart.ts";
import { kindRules, MAX_UPLOADED_BOXART_BYTES, type App, type AppCreate, type AppPatch } from "./model.ts";

export const DEFAULT_APPS: AppCreate[] = [{ name: "Desktop", kind: "desktop", sortOrder: 0 }];

function toApp(r: AppRow): App {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    command: r.command,
    vmName: r.vmName,
    boxArtPath: r.boxArtPath,
    sortOrder: r.sortOrder,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt ? r.updatedAt.toISOString() : null,
  };
}

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && /UNIQUE constraint failed/.test(err.message);
}

export class AppsService {
  /** `boxArtDir`: where uploaded box art is kept (one PNG per app); absent: uploads are refused. */
  constructor(
    private readonly repo: AppsRepo,
    private readonly boxArtDir?: string,
  ) {}

  /** Stores an uploaded PNG as the app's box art (checked: PNG signature, size) and points the app at it. */
  setBoxArt(id: number, png: Uint8Array): App {
    if (!this.boxArtDir) throw new AppError("BOXART_UNAVAILABLE", "this appliance keeps no uploaded box art", { status: 503 });
    const app = this.get(id);
    if (png.length > MAX_UPLOADED_BOXART_BYTES) throw invalid(`box art is ${png.length} bytes; at most ${MAX_UPLOADED_BOXART_BYTES}`);
    if (!isPng(png)) throw invalid("box art must be a PNG image (its signature is not PNG's)");
    mkdirSync(this.boxArtDir, { recursive: true, mode: 0o755 });
    const path = join(this.boxArtDir, `app-${app.id}.png`);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, png, { mode: 0o644 });
    renameSync(tmp, path);
    return this.update(id, { boxArtPath: path });
  }

  list(): App[] {
    return this.repo.list().map(toApp);
  }

  get(id: number): App {
    const row = this.repo.get(id);
    if (!row) throw notFound("app", id);
    return toApp(row);
  }

  create(input: AppCreate): App {
    if (this.repo.getByName(input.name)) throw conflict(`an app named ${JSON.stringify(input.name)} already exists`);
    try {
      return toApp(
        this.repo.insert({
          name: input.name,
          kind: input.kind,
          command: input.command ?? null,
          vmName: input.vmName ?? null,
          boxArtPath: input.boxArtPath ?? null,
          sortOrder: input.sortOrder ?? 0,
        }),
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`an app named ${JSON.stringify(input.name)} already exists`, err);
      throw err;
    }
  }

  update(id: number, patch: AppPatch): App {
    const current = this.repo.get(id);
    if (!current) throw notFound("app", id);
    const next = { ...current, ...patch };
    const issues: string[] = [];
    kindRules(next, {
      addIssue: (i: { path?: PropertyKey[]; message?: string }) =>
        issues.push(`${(i.path ?? []).join(".")}: ${i.message}`),
    } as never);
    if (issues.length) throw invalid(`app would become invalid: ${issues.join("; ")}`);
    if (patch.name !== undefined && patch.name !== current.name && this.repo.getByName(patch.name))
      throw conflict(`an app named ${JSON.stringify(patch.name)} already exists`);
    try {
      const row = this.repo.update(id, { ...patch, updatedAt: new Date() });
      if (!row) throw notFound("app", id);
      return toApp(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`an app named ${JSON.stringify(patch.name)} already exists`, err);
      throw err;
    }
  }

  remove(id: number): void {
    if (!this.repo.remove(id)) throw notFound("app", id);
  }

  /** Seeds the default catalog; called once, when the database is first created. */
  seedDefaults(): void {
    if (!this.repo.isEmpty()) return;
    for (const app of DEFAULT_APPS) this.create(app);
  }
}
