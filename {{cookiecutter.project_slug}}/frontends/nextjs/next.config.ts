import type { NextConfig } from "next";
import { PHASE_DEVELOPMENT_SERVER, PHASE_PRODUCTION_BUILD } from "next/constants";
import { HSTS, policyOptionsFromEnv, securityHeaders } from "./security-headers.mjs";

process.env.NEXT_TELEMETRY_DISABLED ??= "1";

// Every path but the /chatkit proxy: the backend sends its own headers there (attachment
// previews carry a sandboxing CSP that a page policy must not replace).
const PAGES = "/:path((?!chatkit(?:/|$)).*)";
// The same, less the hashed build assets (immutable, Next's own Cache-Control).
const UNHASHED = "/:path((?!chatkit(?:/|$)|_next/static/).*)";

function warnWithoutDomainKey(): void {
  if (process.env.NEXT_PUBLIC_CHATKIT_DOMAIN_KEY?.trim()) return;
  const line = "=".repeat(78);
  console.warn(
    [
      "",
      line,
      "WARNING: NEXT_PUBLIC_CHATKIT_DOMAIN_KEY is not set.",
      "This build only works on localhost and local IPs. On any other domain",
      "ChatKit fails with 'IntegrationError: Domain verification failed'.",
      "Register your domain at",
      "  https://platform.openai.com/settings/organization/security/domain-allowlist",
      "and build again with NEXT_PUBLIC_CHATKIT_DOMAIN_KEY=<the domain_pk_... key>.",
      line,
      "",
    ].join("\n"),
  );
}

export default function config(phase: string): NextConfig {
  // `next typegen` (run by `npm run typecheck`) loads this config in the build phase too.
  if (phase === PHASE_PRODUCTION_BUILD && !process.argv.includes("typegen")) warnWithoutDomainKey();
  // `next build` writes these headers into its output: CSP_ENFORCE and CSP_REPORT_URI are
  // read at build time, like the NEXT_PUBLIC_* settings.
  const pageHeaders = securityHeaders({
    // Next.js inlines the page's hydration data as scripts; only a per-request nonce
    // (a dynamic page) could replace 'unsafe-inline'.
    inlineScript: "'unsafe-inline'",
    development: phase === PHASE_DEVELOPMENT_SERVER,
    apiUrl: process.env.NEXT_PUBLIC_CHATKIT_API_URL?.trim(),
    oidcIssuer: process.env.NEXT_PUBLIC_OIDC_ISSUER?.trim(),
    ...policyOptionsFromEnv(process.env),
  });
  return {
    // Gzip for pages and chunks. Chat events stay uncompressed and unbuffered: the backend
    // sends them with Cache-Control: no-transform, which Next's compression leaves alone.
    compress: true,
    poweredByHeader: false,
    reactStrictMode: true,
    async headers() {
      return [
        { source: PAGES, headers: pageHeaders },
        // The HTML names this build's assets: browsers and caches ask again after a deploy.
        { source: UNHASHED, headers: [{ key: "Cache-Control", value: "no-cache" }] },
        // HSTS only when a proxy in front says the browser came over HTTPS.
        {
          source: PAGES,
          has: [{ type: "header", key: "x-forwarded-proto", value: "https" }],
          headers: [{ key: "Strict-Transport-Security", value: HSTS }],
        },
      ];
    },
    async rewrites() {
      // Browsers ask for /favicon.ico whatever the page links; answer with the SVG.
      return [{ source: "/favicon.ico", destination: "/favicon.svg" }];
    },
  };
}
