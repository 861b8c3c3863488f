/**
 * The web console: one HTML page, its script and its style sheet, all from the binary itself
 * (bundle.macro.ts builds them when the appliance is built). The page holds no data and needs no
 * credentials; everything it shows comes from the API, under a session made from a one-time login
 * code that arrives in the URL's fragment (never sent to the server, never in a log).
 *
 * Every console response carries a strict Content-Security-Policy: scripts and styles only from
 * the appliance itself (no inline code, no eval), no framing, no plugins, connections only back to
 * the same origin.
 */
import { Elysia } from "elysia";
import { consoleBundle } from "./bundle.macro.ts" with { type: "macro" };
import { CONSOLE_PATH } from "./url.ts";

export { CONSOLE_PATH, consoleLoginUrl } from "./url.ts";

const bundle = consoleBundle();
const JS_PATH = `${CONSOLE_PATH}app.${bundle.version}.js`;
const CSS_PATH = `${CONSOLE_PATH}app.${bundle.version}.css`;

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "media-src 'self' blob:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>NeuronOS console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${CSS_PATH}">
<script type="module" src="${JS_PATH}"></script>
</head>
<body>
<noscript>The NeuronOS console needs JavaScript. The CLI (neuron-appliance --help) does everything it does.</noscript>
<div id="app" aria-live="polite"></div>
</body>
</html>
`;

const asset = (body: string, type: string, cache: string) => new Response(body, { headers: { ...SECURITY_HEADERS, "content-type": type, "cache-control": cache } });

export const consoleRoutes = () =>
  new Elysia({ name: "neuron.console" })
    .get("/", ({ redirect }) => redirect(CONSOLE_PATH, 302), { detail: { hide: true } })
    .get(CONSOLE_PATH, () => asset(INDEX_HTML, "text/html; charset=utf-8", "no-store"), { detail: { hide: true } })
    .get(JS_PATH, () => asset(bundle.js, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"), { detail: { hide: true } })
    .get(CSS_PATH, () => asset(bundle.css, "text/css; charset=utf-8", "public, max-age=31536000, immutable"), { detail: { hide: true } });
