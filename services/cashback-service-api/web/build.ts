// Builds the shopper page into web/dist (git-ignored): app.js (TypeScript bundled with esbuild,
// viem included: no CDN), app.css, index.html. Run by `npm run generate` (and so by `npm ci`);
// alone: `npx tsx services/cashback-service-api/web/build.ts [outdir]`.
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const webDir = path.dirname(fileURLToPath(import.meta.url));
export const defaultOutDir = path.join(webDir, "dist");

export async function buildWeb(outDir = defaultOutDir): Promise<{ outDir: string; bytes: number }> {
  await mkdir(outDir, { recursive: true });
  const result = await build({
    entryPoints: [path.join(webDir, "src/main.ts")],
    outfile: path.join(outDir, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    sourcemap: "linked",
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
  });
  await copyFile(path.join(webDir, "index.html"), path.join(outDir, "index.html"));
  await copyFile(path.join(webDir, "style.css"), path.join(outDir, "app.css"));
  const bytes = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith(".js")).reduce((n, [, o]) => n + o.bytes, 0);
  return { outDir, bytes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { outDir, bytes } = await buildWeb(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`shopper page built: ${path.relative(process.cwd(), outDir) || "."} (app.js ${(bytes / 1024).toFixed(0)} KiB)`);
}
