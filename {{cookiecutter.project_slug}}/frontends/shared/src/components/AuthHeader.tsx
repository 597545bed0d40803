"use client"; // Rendered in the browser; bundlers without server components ignore this line.

import { signIn, signOut, useAuth } from "../lib/auth";
import { storeThread } from "../lib/browser";

/** Sign-in, sign-out and who is signed in; nothing at all without sign-in (the session cookie). */
export function AuthHeader() {
  const auth = useAuth();
  if (auth.status === "off" || auth.status === "loading") return null;
  if (auth.status === "signed-out") {
    return (
      <div className="auth" data-testid="auth">
        <button type="button" onClick={() => void signIn()}>
          Sign in
        </button>
      </div>
    );
  }
  const leave = () => {
    // The next person on this browser must not be sent back to this user's thread.
    storeThread(null);
    void signOut();
  };
  return (
    <div className="auth" data-testid="auth">
      <span>
        Signed in as <strong data-testid="auth-user">{auth.userName}</strong>
      </span>
      <button type="button" onClick={leave}>
        Sign out
      </button>
    </div>
  );
}
