export declare const CHATKIT_SCRIPT_ORIGIN: string;
export declare const PERMISSIONS_POLICY: string;
export declare const ALWAYS_ENFORCED: string;
export declare const HSTS: string;

export interface PolicyEnvOptions {
  enforce: boolean;
  reportUri: string | undefined;
  /** CSP_CONNECT_SRC's origins. */
  connectSources: string[];
}

export interface PolicyOptions {
  /** An inline-script source: "'unsafe-inline'" or a "'sha256-...'" hash. */
  inlineScript?: string;
  /** Adds what dev servers need: 'unsafe-eval' and the hot-reload socket. */
  development?: boolean;
  reportUri?: string;
  /** The ChatKit API URL; an absolute one adds its origin to connect-src. */
  apiUrl?: string;
  /** The OpenID issuer the page signs in with; adds its origin to connect-src. */
  oidcIssuer?: string;
  /** More origins for connect-src (CSP_CONNECT_SRC). */
  connectSources?: string[];
}

export interface HeaderOptions extends PolicyOptions {
  /** Send the full policy as Content-Security-Policy instead of Report-Only. */
  enforce?: boolean;
}

export interface Header {
  key: string;
  value: string;
}

export declare function policyOptionsFromEnv(env: Record<string, string | undefined>): PolicyEnvOptions;
export declare function contentSecurityPolicy(options?: PolicyOptions): string;
export declare function securityHeaders(options?: HeaderOptions): Header[];
