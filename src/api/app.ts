/**
 * The management API: Elysia under /api/v1, one controller per domain,
 * OpenAPI at /swagger (UI) and /swagger/json (spec), assets served locally.
 */
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import { z } from "zod";
import { appsRoutes } from "../apps/routes.ts";
import { authGuard } from "../auth/guard.ts";
import { authRoutes } from "../auth/routes.ts";
import { CSRF_HEADER, SESSION_COOKIE } from "../auth/model.ts";
import { captureRoutes } from "../capture/routes.ts";
import { PreviewService } from "../capture/preview.ts";
import { LiveViewService } from "../capture/live.ts";
import { liveRoutes } from "../capture/live-routes.ts";
import { previewRoutes } from "../capture/preview-routes.ts";
import { consoleRoutes } from "../console/routes.ts";
import { eventsRoutes } from "../events/routes.ts";
import type { Core } from "../core.ts";
import { guestRoutes } from "../guest/routes.ts";
import { hardwareRoutes } from "../hardware/routes.ts";
import { setupRoutes } from "../setup/routes.ts";
import { inputRoutes } from "../input/routes.ts";
import { systemRoutes } from "../system/routes.ts";
import { vfioRoutes } from "../vfio/routes.ts";
import { gameStreamRoutes } from "../gamestream/routes.ts";
import { lumenRoutes } from "../lumen/routes.ts";
import { vmRoutes } from "../vm/routes.ts";
import { qmpScreendump } from "../vm/screendump.ts";
import { snapshotsRoutes } from "../snapshots/routes.ts";
import { updatesRoutes } from "../updates/routes.ts";
import { migrationRoutes } from "../migration/routes.ts";
import { UpdateRuns } from "../updates/runs.ts";
import { APPLIANCE_VERSION } from "../version.ts";
import { rejectDeclaredOversize } from "./body.ts";
import { errorHandler } from "./errors.ts";
import { SWAGGER_BUNDLE_URL, SWAGGER_CSS_URL, swaggerAssets } from "./swagger-assets.ts";

export const API_PREFIX = "/api/v1";
export const OPENAPI_PATH = "/swagger";
export const OPENAPI_JSON_PATH = "/swagger/json";

/** The services the routes need; a subset of Core so tests can compose freely. */
export type ApiDeps = Pick<Core, "apps" | "system" | "log" | "config" | "gamestream" | "vms" | "auth" | "users" | "hosts"> &
  Partial<Pick<Core, "hardware" | "vfio" | "capture" | "guest" | "updates" | "snapshots" | "events" | "setup" | "migration" | "input" | "lumen">>;

export function createApp(core: ApiDeps) {
  const limit = core.config.maxBodyBytes;
  return new Elysia({ name: "neuron.api" })
    .use(errorHandler(core.log))
    .onRequest(({ request }) => rejectDeclaredOversize(request, limit))
    .use(
      authGuard({
        auth: core.auth,
        users: core.users,
        hosts: core.hosts,
        adminGroup: core.config.adminGroup,
        jsonLimits: core.config.apiJsonLimits,
        log: core.log.child({ module: "auth" }),
        prefix: API_PREFIX,
      }),
    )
    .use(
      openapi({
        path: OPENAPI_PATH,
        specPath: OPENAPI_JSON_PATH,
        provider: "swagger-ui",
        mapJsonSchema: { zod: (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) },
        exclude: { paths: [/^\/swagger/, /^\/console/, /^\/$/] },
        documentation: {
          info: {
            title: "neuron-appliance management API",
            version: APPLIANCE_VERSION,
            description: "The NeuronOS host appliance: hardware, VFIO, VMs, apps, pairing and streaming.",
          },
          tags: [
            { name: "system", description: "Health, version and the doctor report" },
            { name: "apps", description: "The app catalog served to Moonlight clients" },
            { name: "hardware", description: "CPU, IOMMU groups and GPUs judged for passthrough" },
            { name: "vfio", description: "VFIO configuration: plan, apply, rollback, verify" },
            { name: "gamestream", description: "Moonlight pairing and stream sessions" },
            { name: "capture", description: "Frame sources (IVSHMEM), encoders and the capture → encode pipeline" },
            { name: "vms", description: "Virtual machines: libvirt definitions, lifecycle, Looking Glass shared memory" },
            { name: "guest", description: "The guest agent in each VM: clipboard, resolution, app launch" },
            { name: "updates", description: "System updates inside snapshots: pre/post snapshots, health checks, rollback, history" },
            { name: "setup", description: "The guided setup flow: every step's state, advance, retry, reset" },
            { name: "migrations", description: "Moving a person's Windows files and settings into a Linux home: plan, verified resumable run, report, undo" },
            { name: "events", description: "The live event stream the console listens to (server-sent events)" },
            { name: "auth", description: "Who may call: API tokens, browser sessions from one-time login codes, the audit log" },
          ],
          components: {
            securitySchemes: {
              bearerToken: { type: "http", scheme: "bearer", description: "An API token from `neuron-appliance token create` (scope read: GET only; admin: everything)" },
              browserSession: { type: "apiKey", in: "cookie", name: SESSION_COOKIE, description: "A browser session from a one-time login code (POST /api/v1/auth/session)" },
              csrfHeader: { type: "apiKey", in: "header", name: "X-CSRF-Token", description: `With a browser session, every mutating request carries this header (${CSRF_HEADER})` },
              localSocket: { type: "apiKey", in: "header", name: "X-Local-Socket", description: "Not a header: calls over the local unix socket are authorised by the caller's uid (root or the admin group)" },
            },
          },
          security: [{ bearerToken: [] }, { browserSession: [], csrfHeader: [] }],
        },
        swagger: { cdn: SWAGGER_BUNDLE_URL, theme: SWAGGER_CSS_URL, autoDarkMode: false },
      }),
    )
    .use(swaggerAssets())
    .use(consoleRoutes())
    .group(API_PREFIX, (api) =>
      api
        .use(systemRoutes(core.system))
        .use(authRoutes(core.auth))
        .use(appsRoutes(core.apps))
        .use(gameStreamRoutes(() => core.gamestream(), core.config.gamestreamEnabled))
        .use(core.lumen ? lumenRoutes(core.lumen.bind(core), core.config.lumenEnabled) : new Elysia({ name: "neuron.lumen.absent" }))
        .use(core.hardware ? hardwareRoutes(core.hardware) : new Elysia({ name: "neuron.hardware.off" }))
        .use(core.vfio ? vfioRoutes(core.vfio) : new Elysia({ name: "neuron.vfio.off" }))
        .use(core.capture ? captureRoutes(core.capture) : new Elysia({ name: "neuron.capture.absent" }))
        .use(vmRoutes(core.vms))
        .use(core.capture ? previewRoutes(
                new PreviewService({
                  show: (vm) => core.vms.show(vm),
                  openSource: (path) => core.capture!.openFrameSource(path),
                  screendump: core.config.qmpDir ? (vm) => qmpScreendump(core.config.qmpDir!, vm) : undefined,
                }),
              ) : new Elysia({ name: "neuron.preview.absent" }))
        .use(core.capture ? liveRoutes(new LiveViewService({ show: (vm) => core.vms.show(vm), startPipeline: (path, o) => core.capture!.startPipeline(path, o) }), core.log.child({ module: "live" })) : new Elysia({ name: "neuron.live.absent" }))
        .use(core.input ? inputRoutes(core.input, core.log.child({ module: "input" })) : new Elysia({ name: "neuron.input.absent" }))
        .use(core.guest ? guestRoutes(core.guest) : new Elysia({ name: "neuron.guest.absent" }))
        .use(core.events ? eventsRoutes(core.events) : new Elysia({ name: "neuron.events.absent" }))
        .use(core.updates ? updatesRoutes(core.updates, new UpdateRuns(core.updates, core.events)) : new Elysia({ name: "neuron.updates.absent" }))
        .use(core.snapshots ? snapshotsRoutes(core.snapshots, core.config.updates.root) : new Elysia({ name: "neuron.snapshots.absent" }))
        .use(core.setup ? setupRoutes(core.setup) : new Elysia({ name: "neuron.setup.absent" }))
        .use(core.migration && core.events ? migrationRoutes(core.migration, core.events) : new Elysia({ name: "neuron.migrations.absent" })),
    );
}

export type ApiApp = ReturnType<typeof createApp>;
