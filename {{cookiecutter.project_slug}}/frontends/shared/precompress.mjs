/**
 * Writes a .gz and a .br beside each compressible file of a build, where they are smaller,
 * so the server sends them as they are instead of compressing on every request: nginx's
 * gzip_static (the Vite image), precompressed-assets.mjs (Next.js's server.mjs; Next.js
 * itself has no brotli).
 *
 *   node precompress.mjs DIR        (the Next.js build runs it on .next/static)
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";

const COMPRESSIBLE = /\.(?:html|js|mjs|css|svg|json|txt|xml|webmanifest|map)$/;

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

export function precompressDir(dir) {
  let written = 0;
  for (const file of filesUnder(dir).filter((f) => COMPRESSIBLE.test(f))) {
    const data = readFileSync(file);
    const gz = gzipSync(data, { level: 9 });
    const br = brotliCompressSync(data, {
      params: {
        [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY,
        [zlib.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    });
    for (const [suffix, packed] of [[".gz", gz], [".br", br]]) {
      if (packed.length >= data.length) continue;
      writeFileSync(file + suffix, packed);
      written += 1;
    }
  }
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node precompress.mjs DIR");
    process.exit(2);
  }
  console.log(`precompress: ${precompressDir(dir)} files written under ${dir}`);
}
