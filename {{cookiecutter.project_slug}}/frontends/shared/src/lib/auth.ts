/**
 * Who the page says it is to the backend: the one module where sign-in lives.
 *
 * - OIDC settings unset (the default): nothing to sign in to. Requests carry the backend's
 *   session cookie (AUTH_MODE=session), and oidc-client-ts is never loaded.
 * - Issuer and client id set: sign-in with oidc-client-ts (authorization code + PKCE, the
 *   redirect back to this page), the access token renewed silently with the refresh token,
 *   and `authFetch` sending it as `Authorization: Bearer` (AUTH_MODE=oidc on the backend).
 *
 * To use your provider's own SDK instead, replace this module: keep `useAuth` and `authFetch`.
 */
import { useSyncExternalStore } from "react";
import type { User, UserManager } from "oidc-client-ts";
import { CHATKIT_API_URL } from "./chatkit-config";
import {
  OIDC_AUDIENCE,
  OIDC_CLIENT_ID,
  OIDC_CLIENT_ID_VARIABLE,
  OIDC_ISSUER,
  OIDC_ISSUER_VARIABLE,
  OIDC_SCOPE,
} from "./public-env";

export type AuthState =
  /** No sign-in configured: the session cookie. */
  | { status: "off" }
  /** Sign-in configured; the stored session or the redirect back is being read. */
  | { status: "loading" }
  | { status: "signed-out"; error?: string }
  | { status: "signed-in"; userName: string };

const issuer = OIDC_ISSUER?.trim() ?? "";
const clientId = OIDC_CLIENT_ID?.trim() ?? "";
const audience = OIDC_AUDIENCE?.trim() ?? "";
const DEFAULT_SCOPE = "openid profile offline_access";

/** Whether this build signs in (an OIDC variable set; `start` says so when one is missing). */
export const SIGN_IN_ENABLED = Boolean(issuer || clientId);

function configurationError(): string | undefined {
  if (issuer && !clientId) return `${OIDC_ISSUER_VARIABLE} is set but ${OIDC_CLIENT_ID_VARIABLE} is not: set both and rebuild.`;
  if (clientId && !issuer) return `${OIDC_CLIENT_ID_VARIABLE} is set but ${OIDC_ISSUER_VARIABLE} is not: set both and rebuild.`;
  return undefined;
}

const INITIAL: AuthState = SIGN_IN_ENABLED ? { status: "loading" } : { status: "off" };
let state: AuthState = INITIAL;
const listeners = new Set<() => void>();

function setState(next: AuthState): void {
  state = next;
  for (const listener of listeners) listener();
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function userName(user: User): string {
  const profile = user.profile;
  const name = [profile.name, profile.preferred_username, profile.email].find(
    (value): value is string => typeof value === "string" && value.trim() !== "",
  );
  return name ?? profile.sub;
}

function signedIn(user: User | null): AuthState {
  return user && !user.expired ? { status: "signed-in", userName: userName(user) } : { status: "signed-out" };
}

let managerPromise: Promise<UserManager> | null = null;

/**
 * The UserManager, with oidc-client-ts loaded on first use (its own chunk of the build).
 * Without sign-in the build has no such chunk: the bundler drops the import below.
 */
function manager(): Promise<UserManager> {
  if (!SIGN_IN_ENABLED) return Promise.reject(new Error("sign-in is not configured"));
  managerPromise ??= import("oidc-client-ts").then(({ UserManager, WebStorageStateStore }) => {
    const here = `${window.location.origin}/`;
    const users = new UserManager({
      authority: issuer,
      client_id: clientId,
      // The provider sends the browser back to this page; `start` finishes the sign-in there.
      redirect_uri: here,
      post_logout_redirect_uri: here,
      scope: OIDC_SCOPE?.trim() || DEFAULT_SCOPE,
      ...(audience && { extraQueryParams: { audience } }),
      // Renews the access token shortly before it expires, with the refresh token.
      automaticSilentRenew: true,
      // The tokens last as long as the tab (sessionStorage), not in localStorage.
      userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    });
    users.events.addUserLoaded((user) => setState(signedIn(user)));
    users.events.addUserUnloaded(() => setState({ status: "signed-out" }));
    users.events.addSilentRenewError((error) => {
      console.warn("The access token could not be renewed:", error);
    });
    users.events.addAccessTokenExpired(() => {
      void users.removeUser().then(() => setState({ status: "signed-out", error: "Your sign-in expired: sign in again." }));
    });
    return users;
  });
  return managerPromise;
}

function isRedirectBack(url: URL): boolean {
  return url.searchParams.has("state") && (url.searchParams.has("code") || url.searchParams.has("error"));
}

let started = false;

/** Reads the stored session, or finishes the sign-in the provider redirected back from. */
function start(): void {
  if (started || !SIGN_IN_ENABLED) return;
  started = true;
  const misconfigured = configurationError();
  if (misconfigured) {
    setState({ status: "signed-out", error: misconfigured });
    return;
  }
  (async () => {
    const users = await manager();
    const url = new URL(window.location.href);
    if (!isRedirectBack(url)) {
      const stored = await users.getUser();
      // Back after the access token expired (a sleeping laptop): renew it with the refresh token.
      return signedIn(stored?.expired ? await users.signinSilent().catch(() => null) : stored);
    }
    try {
      return signedIn((await users.signinCallback(url.href)) ?? null);
    } finally {
      // The code is single-use: keep it out of the address bar, history and a reload.
      for (const name of ["code", "state", "session_state", "iss", "error", "error_description", "error_uri"]) {
        url.searchParams.delete(name);
      }
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    }
  })().then(setState, (error: unknown) => {
    console.error("Sign-in failed:", error);
    setState({ status: "signed-out", error: `Sign-in failed: ${describe(error)}` });
  });
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  start();
  return () => listeners.delete(listener);
}

/** The sign-in state; "loading" while a server renders the page (and during hydration). */
export function useAuth(): AuthState {
  return useSyncExternalStore(subscribe, () => state, () => INITIAL);
}

/** Off to the provider's sign-in page; it sends the browser back to this page. */
export async function signIn(): Promise<void> {
  try {
    await (await manager()).signinRedirect();
  } catch (error) {
    console.error("Sign-in failed:", error);
    setState({ status: "signed-out", error: `Sign-in could not start: ${describe(error)}` });
  }
}

/** Forgets the tokens; signs out at the provider too when it offers that (end_session_endpoint). */
export async function signOut(): Promise<void> {
  const users = await manager();
  const endSession = await users.metadataService.getEndSessionEndpoint().catch(() => undefined);
  if (endSession) {
    await users.signoutRedirect();
  } else {
    await users.removeUser();
  }
}

async function accessToken(): Promise<string | null> {
  const users = await manager();
  const user = await users.getUser();
  if (!user) return null;
  if (!user.expired) return user.access_token;
  const renewed = await users.signinSilent().catch(() => null);
  return renewed?.access_token ?? null;
}

// The bearer token only ever goes to the ChatKit API's own origin (never, say, to an
// object store's upload URL).
function goesToTheApi(input: RequestInfo | URL): boolean {
  const url = input instanceof Request ? input.url : String(input);
  const api = new URL(CHATKIT_API_URL, window.location.href);
  return new URL(url, window.location.href).origin === api.origin;
}

/**
 * The `fetch` for ChatKit and the attachment policy. Requests go out from this page (not
 * from ChatKit's frame), so the session cookie goes with them; signed in, the access token too.
 */
export const authFetch: typeof fetch = async (input, init) => {
  if (!SIGN_IN_ENABLED || !goesToTheApi(input)) return fetch(input, { ...init, credentials: "include" });
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  const token = await accessToken();
  if (token) headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers, credentials: "include" });
};
