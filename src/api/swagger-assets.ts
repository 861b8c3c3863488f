/**
 * Swagger UI's assets, served by the appliance itself (an offline machine
 * cannot reach a CDN). `type: "file"` imports embed them in the compiled binary.
 */
import { Elysia } from "elysia";
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };

export const SWAGGER_ASSET_BASE = "/swagger/assets";
export const SWAGGER_BUNDLE_URL = `${SWAGGER_ASSET_BASE}/swagger-ui-bundle.js`;
export const SWAGGER_CSS_URL = `${SWAGGER_ASSET_BASE}/swagger-ui.css`;

const assets: Record<string, { path: string; type: string }> = {
  "swagger-ui-bundle.js": { path: bundlePath, type: "text/javascript; charset=utf-8" },
  "swagger-ui.css": { path: cssPath, type: "text/css; charset=utf-8" },
};

export const swaggerAssets = () =>
  new Elysia({ name: "neuron.swagger-assets", prefix: SWAGGER_ASSET_BASE }).get(
    "/:name",
    ({ params, set }) => {
      const asset = assets[params.name];
      if (!asset) {
        set.status = 404;
        return { error: { code: "NOT_FOUND", message: `no asset ${params.name}` } };
      }
      return new Response(Bun.file(asset.path), {
        headers: { "content-type": asset.type, "cache-control": "public, max-age=86400" },
      });
    },
    { detail: { hide: true } },
  );
