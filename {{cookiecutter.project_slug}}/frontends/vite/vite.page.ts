// What the page sends besides the app: the ChatKit script in the document head, the security
// headers (dev and preview servers, and the nginx config the build writes), files precompressed
// for nginx's gzip_static, and the page rendered into index.html at build time.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import react from "@vitejs/plugin-react";
import { createServer, type Connect, type Plugin } from "vite";
import { CHATKIT_LOADER, CHATKIT_SCRIPT_URL, LOADER_HASH } from "./chatkit-loader.mjs";
import { precompressDir } from "./precompress.mjs";
import {
  CHATKIT_SCRIPT_ORIGIN,
  HSTS,
  policyOptionsFromEnv,
  securityHeaders,
  type Header,
} from "./security-headers.mjs";

/** The preconnect, the loader that records a load error, then the CDN script itself. */
export function chatkitHead(): Plugin {
  return {
    name: "chatkit-head",
    transformIndexHtml: () => [
      // No crossorigin: the script is a plain (credentialed) request, and only a matching
      // connection is reused.
      { tag: "link", attrs: { rel: "preconnect", href: CHATKIT_SCRIPT_ORIGIN }, injectTo: "head-prepend" },
      { tag: "script", children: CHATKIT_LOADER, injectTo: "head-prepend" },
      { tag: "script", attrs: { src: CHATKIT_SCRIPT_URL, async: true }, injectTo: "head-prepend" },
    ],
  };
}

type Env = Record<string, string | undefined>;

/** The page's headers; `development` loosens the policy for Vite's inline preamble and HMR. */
export function pageHeaders(env: Env, development: boolean): Header[] {
  return securityHeaders({
    ...policyOptionsFromEnv(env),
    inlineScript: development ? "'unsafe-inline'" : LOADER_HASH,
    development,
    apiUrl: env.VITE_CHATKIT_API_URL?.trim() || undefined,
    oidcIssuer: env.VITE_OIDC_ISSUER?.trim() || undefined,
  });
}

// /chatkit keeps the backend's own headers (attachment previews carry their own policy).
const isChatKitPath = (url = "") => url === "/chatkit" || url.startsWith("/chatkit/") || url.startsWith("/chatkit?");

function headerMiddleware(headers: Header[]): Connect.NextHandleFunction {
  return (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    // As in nginx.conf.template: browsers and tools that ask for /favicon.ico get the SVG.
    if (req.url === "/favicon.ico") req.url = "/favicon.svg";
    if (!isChatKitPath(req.url)) {
      for (const { key, value } of headers) res.setHeader(key, value);
      if (req.headers["x-forwarded-proto"] === "https") res.setHeader("Strict-Transport-Security", HSTS);
    }
    next();
  };
}

/** nginx's form of the headers: `always`, so error pages carry them too. */
export function nginxHeaderLines(headers: Header[]): string {
  const lines = headers.map(({ key, value }) => {
    if (/["$\\\n]/.test(value)) throw new Error(`header ${key} has a character nginx would misread`);
    return `add_header ${key} "${value}" always;`;
  });
  lines.push("add_header Strict-Transport-Security $chatkit_hsts always;");
  return lines.join("\n") + "\n";
}

/** Dev and preview servers send the headers (and answer /favicon.ico); a build writes them to nginx/. */
export function pageHeadersPlugin(env: Env): Plugin {
  let root = "";
  let building = false;
  return {
    name: "page-headers",
    configResolved(config) {
      root = config.root;
      building = config.command === "build";
    },
    configureServer(server) {
      server.middlewares.use(headerMiddleware(pageHeaders(env, true)));
    },
    configurePreviewServer(server) {
      server.middlewares.use(headerMiddleware(pageHeaders(env, false)));
    },
    closeBundle() {
      if (!building) return;
      const dir = path.join(root, "nginx");
      mkdirSync(dir, { recursive: true });
      const note = "# Written by `npm run build` (vite.page.ts); included by nginx.conf.template.\n";
      writeFileSync(path.join(dir, "security-headers.conf"), note + nginxHeaderLines(pageHeaders(env, false)));
      const hsts = `map $chatkit_forwarded_proto $chatkit_hsts {\n    default "";\n    https "${HSTS}";\n}\n`;
      writeFileSync(path.join(dir, "hsts.conf"), note + hsts);
    },
  };
}

/** A .gz and a .br beside each compressible file of the build, where they are smaller. */
export function precompress(): Plugin {
  let outDir = "";
  return {
    name: "precompress",
    apply: "build",
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    closeBundle: {
      order: "post",
      handler() {
        precompressDir(outDir);
      },
    },
  };
}

const ROOT_MARKUP = '<div id="root"></div>';

/**
 * The page rendered into index.html's root at build time (src/prerender.tsx), so the browser
 * shows it, <openai-chatkit> included, before the bundle arrives; main.tsx hydrates it.
 */
export function prerender(entry = "/src/prerender.tsx"): Plugin {
  let root = "";
  let mode = "";
  return {
    name: "prerender",
    apply: "build",
    configResolved(config) {
      root = config.root;
      mode = config.mode;
    },
    transformIndexHtml: {
      order: "post",
      async handler(html) {
        if (!html.includes(ROOT_MARKUP)) throw new Error(`index.html has no ${ROOT_MARKUP} to render into`);
        const server = await createServer({
          configFile: false,
          root,
          mode,
          logLevel: "error",
          appType: "custom",
          plugins: [react()],
          server: { middlewareMode: true, hmr: false, ws: false },
        });
        try {
          const { render } = (await server.ssrLoadModule(entry)) as { render: () => string };
          return html.replace(ROOT_MARKUP, `<div id="root">${render()}</div>`);
        } finally {
          await server.close();
        }
      },
    },
  };
}
