import { readFileSync } from "node:fs";
import react from "@vitejs/plugin-react";
import { defineConfig, loadEnv, type Plugin, type ProxyOptions } from "vite";
import { chatkitHead, pageHeadersPlugin, precompress, prerender } from "./vite.page";

const DEFAULT_BACKEND_URL = "http://127.0.0.1:8000";
const site = JSON.parse(readFileSync(new URL("./site.config.json", import.meta.url), "utf8")) as {
  projectName: string;
  description: string;
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Puts the project's name and description (site.config.json) into index.html. */
function siteHtml(): Plugin {
  return {
    name: "site-html",
    transformIndexHtml: (html) =>
      html
        .replaceAll("%SITE_TITLE%", escapeHtml(site.projectName))
        .replaceAll("%SITE_DESCRIPTION%", escapeHtml(site.description)),
  };
}

/** A production build without a domain key works on localhost only: say so loudly. */
function warnWithoutDomainKey(domainKey: string | undefined): Plugin {
  return {
    name: "warn-without-domain-key",
    apply: "build",
    configResolved(config) {
      if (domainKey?.trim()) return;
      const line = "=".repeat(78);
      config.logger.warn(
        [
          "",
          line,
          "WARNING: VITE_CHATKIT_DOMAIN_KEY is not set.",
          "This build only works on localhost and local IPs. On any other domain",
          "ChatKit fails with 'IntegrationError: Domain verification failed'.",
          "Register your domain at",
          "  https://platform.openai.com/settings/organization/security/domain-allowlist",
          "and build again with VITE_CHATKIT_DOMAIN_KEY=<the domain_pk_... key>.",
          line,
          "",
        ].join("\n"),
      );
    },
  };
}

/**
 * /chatkit and everything under it go to the backend: events stream through, cookies go both
 * ways, attachment uploads stream on as they are sent and previews keep the backend's headers.
 * `xfwd` adds X-Forwarded-Host/-Proto, from which the backend builds upload and preview URLs
 * on this server's origin.
 */
function chatkitProxy(backendUrl: string): Record<string, ProxyOptions> {
  return {
    "/chatkit": {
      target: backendUrl,
      changeOrigin: false,
      xfwd: true,
      configure: (proxy) => {
        proxy.on("proxyReq", (proxyReq) => {
          // Plain bytes from the backend, passed on as they are.
          proxyReq.setHeader("accept-encoding", "identity");
        });
        proxy.on("proxyRes", (proxyRes) => {
          if (proxyRes.headers["content-type"]?.startsWith("text/event-stream")) {
            proxyRes.headers["cache-control"] = "no-cache, no-transform";
            proxyRes.headers["x-accel-buffering"] = "no";
          }
        });
      },
    },
  };
}

export default defineConfig(({ mode }) => {
  // "" loads every variable (BACKEND_URL, CSP_ENFORCE, CSP_REPORT_URI too) from the
  // environment and .env files; only VITE_* ones ever reach the browser bundle.
  const env = loadEnv(mode, process.cwd(), "");
  const proxy = chatkitProxy(env.BACKEND_URL?.trim() || DEFAULT_BACKEND_URL);
  return {
    plugins: [
      react(),
      siteHtml(),
      chatkitHead(),
      prerender(),
      pageHeadersPlugin(env),
      precompress(),
      warnWithoutDomainKey(env.VITE_CHATKIT_DOMAIN_KEY),
    ],
    server: { port: 5173, proxy },
    preview: { port: 4173, proxy },
  };
});
