import type { StartScreenPrompt } from "@openai/chatkit-react";
import site from "../../site.config.json";
import { CONFIGURED_API_URL, CONFIGURED_DOMAIN_KEY } from "./public-env";

/** Where a deployed domain is registered to get its domain key. */
export const DOMAIN_ALLOWLIST_URL =
  "https://platform.openai.com/settings/organization/security/domain-allowlist";

/** Any key passes domain verification on localhost and local IPs; this one is only used there. */
export const LOCAL_DEV_DOMAIN_KEY = "domain_pk_localhost_dev";

const configuredDomainKey = CONFIGURED_DOMAIN_KEY?.trim();

/** Same-origin by default: the frontend's own server proxies /chatkit to the backend. */
export const CHATKIT_API_URL = CONFIGURED_API_URL?.trim() || "/chatkit";

export const SITE = {
  projectName: site.projectName,
  description: site.description,
  greeting: site.greeting,
  composerPlaceholder: site.composerPlaceholder,
  prompts: site.prompts as StartScreenPrompt[],
};

/** localhost, loopback and private-network addresses: where ChatKit accepts any domain key. */
export function isLocalHostname(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost") || host === "::1" || host === "0.0.0.0") {
    return true;
  }
  const octets = host.split(".").map(Number);
  if (octets.length !== 4 || octets.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
    return /^f[cd][0-9a-f]{2}:/.test(host) || host.startsWith("fe80:");
  }
  const [a, b] = octets;
  return (
    a === 127 ||
    a === 10 ||
    (a === 192 && b === 168) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 169 && b === 254)
  );
}

/**
 * The domain key for this page: the configured one, else the local-development
 * value on local hosts only. `null` means a deployed page without a key. While a server
 * renders the page the hostname is unknown (`null`): only a configured key is known then.
 */
export function resolveDomainKey(hostname: string | null): string | null {
  if (configuredDomainKey) return configuredDomainKey;
  if (hostname === null) return null;
  return isLocalHostname(hostname) ? LOCAL_DEV_DOMAIN_KEY : null;
}
