import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyReply } from "fastify";
import type { App } from "../http/server.ts";

/** Where `npm run generate` (web/build.ts) puts the shopper page: generated, git-ignored. */
export const webDistDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web/dist");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * Everything the page loads comes from this origin (no CDN, works offline); its scripts only talk
 * to this API (connect-src 'self') and to the wallet the browser injected. No framing, no inline
 * script, no referrer.
 */
export const PAGE_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-cache",
};

/**
 * The shopper page at /app: a few built files served from web/dist (read on each request: a
 * handful of small files, and a rebuilt page shows without a restart). 503 with the command to
 * run when the page was not built.
 */
export function registerPageRoutes(app: App, opts: { dir?: string } = {}) {
  const dir = opts.dir ?? webDistDir;

  async function serve(file: string, reply: FastifyReply) {
    const type = TYPES[path.extname(file)];
    if (!type || !/^[a-z0-9][a-z0-9.-]*$/.test(file)) return reply.status(404).type("text/plain").send("not found\n");
    let body: Buffer;
    try {
      body = await readFile(path.join(dir, file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      if (file === "index.html") return reply.status(503).type("text/plain").send("The shopper page is not built: run `npm run generate` (npm ci runs it too).\n");
      return reply.status(404).type("text/plain").send("not found\n");
    }
    return reply.headers(PAGE_HEADERS).type(type).send(body);
  }

  const hide = { schema: { hide: true }, config: { rateLimit: false } } as const;
  app.get("/app", hide, (_request, reply) => serve("index.html", reply));
  app.get("/app/", hide, (_request, reply) => serve("index.html", reply));
  app.get<{ Params: { file: string } }>("/app/:file", hide, (request, reply) => serve(request.params.file, reply));
}
