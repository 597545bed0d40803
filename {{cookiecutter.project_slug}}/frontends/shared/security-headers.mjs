// The response headers both frontends send on every page (next.config.ts, vite.config.ts
// and the nginx config generated from it), in one place so they cannot drift apart.
// Plain ESM so that both configs can import it; the README lists why each source is here.

export const CHATKIT_SCRIPT_ORIGIN = "https://cdn.platform.openai.com";
const OPENAI_API_ORIGIN = "https://api.openai.com";

// Features the page never uses. The microphone is left to the ChatKit widget (dictation).
export const PERMISSIONS_POLICY = "camera=(), geolocation=(), payment=(), usb=()";

// Enforced even while the rest of the policy is report-only: none of them can affect the widget.
export const ALWAYS_ENFORCED = "frame-ancestors 'self'; object-src 'none'; base-uri 'self'";

// Only ever sent over HTTPS (each server decides that; see its config).
export const HSTS = "max-age=63072000; includeSubDomains";

const TRUE_WORDS = new Set(["1", "true", "yes"]);

/**
 * CSP_CONNECT_SRC: more origins the page may call, comma-separated, e.g. an object store the
 * browser uploads to, or a sign-in provider whose token endpoint is not on its issuer's origin.
 */
function connectSourcesFrom(value) {
  const sources = String(value ?? "").split(",").map((item) => item.trim()).filter(Boolean);
  for (const source of sources) {
    if (originOf(source) !== source.replace(/\/$/, "") || !/^https?:/.test(source)) {
      throw new Error(
        `CSP_CONNECT_SRC: "${source}" is not an origin; write origins (scheme, host and ` +
          "optional port, no path) separated by commas",
      );
    }
  }
  return sources.map((source) => source.replace(/\/$/, ""));
}

/** CSP_ENFORCE, CSP_REPORT_URI and CSP_CONNECT_SRC, read from an environment. */
export function policyOptionsFromEnv(env) {
  const enforce = TRUE_WORDS.has(String(env.CSP_ENFORCE ?? "").trim().toLowerCase());
  const reportUri = String(env.CSP_REPORT_URI ?? "").trim() || undefined;
  return { enforce, reportUri, connectSources: connectSourcesFrom(env.CSP_CONNECT_SRC) };
}

// "unsafe-inline" and "'unsafe-inline'" both mean the keyword; hashes come quoted.
function sourceExpression(source) {
  const trimmed = source.trim();
  return trimmed.startsWith("'") ? trimmed : `'${trimmed}'`;
}

function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return undefined; // A relative URL (the default /chatkit) is covered by 'self'.
  }
}

/** The full Content-Security-Policy for the page. */
export function contentSecurityPolicy({
  inlineScript,
  development = false,
  reportUri,
  apiUrl,
  oidcIssuer,
  connectSources = [],
} = {}) {
  const script = ["'self'"];
  if (inlineScript) script.push(sourceExpression(inlineScript));
  if (development) script.push("'unsafe-eval'"); // Dev servers evaluate modules for hot reload.
  script.push(CHATKIT_SCRIPT_ORIGIN);

  const connect = ["'self'"];
  const apiOrigin = apiUrl ? originOf(apiUrl) : undefined;
  if (apiOrigin) connect.push(apiOrigin);
  // Sign-in (src/lib/auth.ts) fetches the provider's discovery document and tokens.
  const issuerOrigin = oidcIssuer ? originOf(oidcIssuer) : undefined;
  if (issuerOrigin) connect.push(issuerOrigin);
  connect.push(...connectSources);
  connect.push(OPENAI_API_ORIGIN, CHATKIT_SCRIPT_ORIGIN);
  if (development) connect.push("ws:", "wss:"); // The hot-reload socket.

  const directives = [
    "default-src 'self'",
    `script-src ${script.join(" ")}`,
    `frame-src ${CHATKIT_SCRIPT_ORIGIN}`,
    `connect-src ${[...new Set(connect)].join(" ")}`,
    "img-src 'self' data: blob: https:",
    "style-src 'self' 'unsafe-inline'",
    `font-src 'self' data: ${CHATKIT_SCRIPT_ORIGIN}`,
    "worker-src 'self' blob:",
    ALWAYS_ENFORCED,
  ];
  if (reportUri) directives.push(`report-uri ${reportUri}`);
  return directives.join("; ");
}

/** The headers for every page response, as [{ key, value }] (Next.js's shape). */
export function securityHeaders({
  inlineScript,
  development = false,
  enforce = false,
  reportUri,
  apiUrl,
  oidcIssuer,
  connectSources,
} = {}) {
  const policy = contentSecurityPolicy({
    inlineScript,
    development,
    reportUri,
    apiUrl,
    oidcIssuer,
    connectSources,
  });
  const csp = enforce
    ? [{ key: "Content-Security-Policy", value: policy }]
    : [
        { key: "Content-Security-Policy", value: ALWAYS_ENFORCED },
        { key: "Content-Security-Policy-Report-Only", value: policy },
      ];
  return [
    ...csp,
    { key: "X-Frame-Options", value: "SAMEORIGIN" },
    { key: "X-Content-Type-Options", value: "nosniff" },
    { key: "Referrer-Policy", value: "strict-origin-when-cross-origin" },
    { key: "Permissions-Policy", value: PERMISSIONS_POLICY },
  ];
}
