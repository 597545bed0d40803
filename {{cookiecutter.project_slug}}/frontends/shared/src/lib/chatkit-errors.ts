import { DOMAIN_ALLOWLIST_URL } from "./chatkit-config";
import { DOMAIN_KEY_VARIABLE } from "./public-env";

export type Problem = {
  title: string;
  /** Plain-text steps; rendered as a list. */
  steps: string[];
  /** Technical detail, shown small. */
  detail?: string;
  link?: { href: string; label: string };
};

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

export function isDomainVerificationError(error: unknown): boolean {
  return /domain verification failed/i.test(describe(error));
}

export function domainProblem(hostname: string, detail?: string): Problem {
  return {
    title: "ChatKit could not verify this domain",
    steps: [
      `Register the domain "${hostname}" in the OpenAI dashboard (Settings → Security → Domain allowlist).`,
      `Copy the domain key it gives you (it starts with "domain_pk_") into ${DOMAIN_KEY_VARIABLE}.`,
      "Rebuild and redeploy the frontend: the key is read at build time.",
    ],
    detail,
    link: { href: DOMAIN_ALLOWLIST_URL, label: "Open the domain allowlist" },
  };
}

export function missingKeyProblem(hostname: string): Problem {
  return {
    ...domainProblem(hostname),
    title: `No ChatKit domain key is configured for "${hostname}"`,
  };
}

export function scriptProblem(reason: "error" | "timeout"): Problem {
  return {
    title: "The ChatKit script did not load",
    steps: [
      "The chat UI comes from cdn.platform.openai.com. Check that this browser can reach it " +
        "(network, proxy, ad blocker or Content-Security-Policy).",
      "Reload the page once it is reachable.",
    ],
    detail: reason === "timeout" ? "Timed out waiting for <openai-chatkit> to be defined." : "The script request failed.",
  };
}

export function chatkitProblem(error: unknown, hostname: string): Problem {
  const detail = describe(error);
  if (isDomainVerificationError(error)) return domainProblem(hostname, detail);
  return {
    title: "The chat ran into a problem",
    steps: [
      "Check that the backend is running and reachable from this page (see the browser console and the backend log).",
      "Reload the page to try again.",
    ],
    detail,
  };
}
