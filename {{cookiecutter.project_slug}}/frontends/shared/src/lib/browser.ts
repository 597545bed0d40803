import { useSyncExternalStore } from "react";

const noSubscription = () => () => {};

/** The page's hostname; `null` only while a server renders the page, and during hydration. */
export function useHostname(): string | null {
  return useSyncExternalStore(
    noSubscription,
    () => window.location.hostname,
    () => null,
  );
}

const DARK_QUERY = "(prefers-color-scheme: dark)";

function subscribeToColorScheme(onChange: () => void): () => void {
  const query = window.matchMedia(DARK_QUERY);
  query.addEventListener("change", onChange);
  return () => query.removeEventListener("change", onChange);
}

/** Follows the system's light/dark setting, live. */
export function useColorScheme(): "light" | "dark" {
  return useSyncExternalStore(
    subscribeToColorScheme,
    () => (window.matchMedia(DARK_QUERY).matches ? "dark" : "light"),
    () => "light",
  );
}

const THREAD_KEY = "chatkit.threadId";

/** The thread shown last in this browser, so a reload keeps the conversation. */
export function readStoredThread(): string | null {
  try {
    return window.localStorage.getItem(THREAD_KEY);
  } catch {
    return null;
  }
}

export function storeThread(threadId: string | null): void {
  try {
    if (threadId) window.localStorage.setItem(THREAD_KEY, threadId);
    else window.localStorage.removeItem(THREAD_KEY);
  } catch {
    // Storage can be unavailable (private mode, disabled cookies): resuming is a nicety.
  }
}
