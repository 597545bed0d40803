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

/** A request the backend refused before doing anything: too fast, too long, or not signed in. */
export type Refusal = {
  status: number;
  code: string;
  /** Which limit refused it, e.g. user_turns or user_uploads. */
  limit: string;
  message: string;
  retryAfter: number | null;
};

const REFUSED = new Set([401, 413, 429]);

/** The refusal a response carries (the backend's `{"error": {code, message, retry_after}}`), or null. */
export async function readRefusal(response: Response): Promise<Refusal | null> {
  if (!REFUSED.has(response.status)) return null;
  const body = (await response.clone().json().catch(() => null)) as { error?: unknown } | null;
  const error = typeof body?.error === "object" && body.error !== null ? (body.error as Record<string, unknown>) : {};
  const text = (value: unknown): string => (typeof value === "string" ? value : "");
  // Retry-After is readable from another origin only when exposed; the body carries it too.
  const header = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
  const fromBody = error.retry_after;
  const retryAfter = Number.isFinite(header) ? header : typeof fromBody === "number" ? fromBody : null;
  return {
    status: response.status,
    code: text(error.code),
    limit: text(error.limit),
    message: text(error.message),
    retryAfter,
  };
}

/** "45 s", "75 s", "3 min", "5 h 20 min". */
export function formatWait(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.ceil(seconds))} s`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)} min`;
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.ceil((seconds % 3600) / 60);
  return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
}

export function refusalProblem(refusal: Refusal): Problem {
  const detail = refusal.message || undefined;
  if (refusal.status === 429) {
    const wait = refusal.retryAfter === null ? "in a moment" : `in ${formatWait(refusal.retryAfter)}`;
    if (refusal.code === "token_budget") {
      return { title: "Today's allowance of this app is used up", steps: [`It renews at midnight UTC: try again ${wait}.`], detail };
    }
    const uploads = refusal.limit === "user_uploads" || refusal.limit === "upload_bytes";
    return {
      title: uploads
        ? "You're attaching files faster than this app allows"
        : "You're sending messages faster than this app allows",
      steps: [`Try again ${wait}.`],
      detail,
    };
  }
  if (refusal.status === 413) {
    return {
      title: refusal.code === "message_too_long" ? "That message is too long" : "That is too large to send",
      steps: [refusal.message || "Make it shorter or smaller and send it again."],
    };
  }
  return {
    title: "The backend did not accept your sign-in",
    steps: [
      "Sign out and sign in again.",
      "If it keeps happening: the backend's OIDC_ISSUER and OIDC_AUDIENCE must match the access " +
        "token's iss and aud (see the project README, \"Sign-in (OIDC)\").",
    ],
    detail,
  };
}
