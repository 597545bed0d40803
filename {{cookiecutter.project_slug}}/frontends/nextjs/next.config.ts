import type { NextConfig } from "next";
import { PHASE_PRODUCTION_BUILD } from "next/constants";

process.env.NEXT_TELEMETRY_DISABLED ??= "1";

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
  return {
    // Chat events go out as plain text, so no proxy on the way waits to fill a gzip block.
    compress: false,
    poweredByHeader: false,
    reactStrictMode: true,
  };
}
