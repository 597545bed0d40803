/**
 * The build-time settings, read the Next.js way: `next build` inlines each
 * `process.env.NEXT_PUBLIC_*` named in full below into the browser bundle; no other
 * variable reaches the browser. The rest of src/ reads them only through this module.
 */

/** The variable that takes the domain key (named in the messages shown to users). */
export const DOMAIN_KEY_VARIABLE = "NEXT_PUBLIC_CHATKIT_DOMAIN_KEY";

/** Where the browser sends ChatKit requests; unset means /chatkit. */
export const CONFIGURED_API_URL: string | undefined = process.env.NEXT_PUBLIC_CHATKIT_API_URL;

/** The domain key; unset means the local-development value, on local hosts only. */
export const CONFIGURED_DOMAIN_KEY: string | undefined = process.env.NEXT_PUBLIC_CHATKIT_DOMAIN_KEY;

/**
 * Sign-in with OpenID Connect (src/lib/auth.ts): the provider's issuer URL and this app's
 * client id there. Both unset: no sign-in, the backend's session cookie (AUTH_MODE=session).
 */
export const OIDC_ISSUER: string | undefined = process.env.NEXT_PUBLIC_OIDC_ISSUER;
export const OIDC_CLIENT_ID: string | undefined = process.env.NEXT_PUBLIC_OIDC_CLIENT_ID;
/** For providers that need it to issue a JWT for the API (Auth0): the backend's OIDC_AUDIENCE. */
export const OIDC_AUDIENCE: string | undefined = process.env.NEXT_PUBLIC_OIDC_AUDIENCE;
/** The scopes asked for; unset means "openid profile offline_access" (offline_access: a refresh token). */
export const OIDC_SCOPE: string | undefined = process.env.NEXT_PUBLIC_OIDC_SCOPE;
/** The variables' names, for the messages shown when they are half set. */
export const OIDC_ISSUER_VARIABLE = "NEXT_PUBLIC_OIDC_ISSUER";
export const OIDC_CLIENT_ID_VARIABLE = "NEXT_PUBLIC_OIDC_CLIENT_ID";
