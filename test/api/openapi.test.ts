import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { generateOpenApi, OPENAPI_FILE } from "../../build/openapi.ts";
import { createApp } from "../../src/api/app.ts";
import { testCore } from "../helpers/env.ts";

describe("OpenAPI", () => {
  test("the checked-in spec matches what the API serves (run `npm run openapi` after changing routes)", async () => {
    const generated = await generateOpenApi();
    expect(readFileSync(OPENAPI_FILE, "utf8")).toBe(generated);
  });

  test("documents every /api/v1 route with zod schemas as JSON Schema", async () => {
    const spec = JSON.parse(readFileSync(OPENAPI_FILE, "utf8"));
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(["/api/v1/health", "/api/v1/system", "/api/v1/apps/", "/api/v1/apps/{id}"]));
    const post = spec.paths["/api/v1/apps/"].post;
    const schema = JSON.stringify(post.requestBody.content["application/json"].schema);
    expect(schema).toContain('"additionalProperties":false');
    expect(schema).toContain('"enum":["desktop","vm","command","host-desktop"]');
  });

  test("the Swagger page loads its assets from the appliance itself, never a CDN", async () => {
    const { core, cleanup } = testCore();
    try {
      const app = createApp(core);
      const html = await (await app.handle(new Request("http://localhost/swagger"))).text();
      expect(html).toContain("SwaggerUIBundle");
      const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      expect(urls.length).toBeGreaterThanOrEqual(2);
      for (const url of urls) {
        expect(url.startsWith("/")).toBe(true);
        const res = await app.handle(new Request(`http://localhost${url}`));
        expect(res.status).toBe(200);
        expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(1000);
      }
      expect(html).not.toMatch(/https?:\/\/(?!localhost)/);
    } finally {
      cleanup();
    }
  });
});
