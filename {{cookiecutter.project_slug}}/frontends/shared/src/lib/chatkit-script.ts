import { useEffect, useState } from "react";

export type ScriptStatus = "loading" | "ready" | "error" | "timeout";

// Whatever adds the script tag sees its load error and reports it here; the widget listens.
let scriptFailed = false;
const failureListeners = new Set<() => void>();

/** Called when the CDN script fails to load. */
export function markChatKitScriptFailed(): void {
  scriptFailed = true;
  failureListeners.forEach((listener) => listener());
}

/** Whether the CDN script has defined <openai-chatkit>, failed, or is taking too long. */
export function useChatKitScript(timeoutMs = 20_000): ScriptStatus {
  const [status, setStatus] = useState<ScriptStatus>("loading");

  useEffect(() => {
    let active = true;
    let defined = false;
    const fail = (reason: "error" | "timeout") => {
      if (active && !defined) setStatus(reason);
    };
    const onFailure = () => fail("error");

    customElements.whenDefined("openai-chatkit").then(() => {
      defined = true;
      if (active) setStatus("ready");
    });
    failureListeners.add(onFailure);
    if (scriptFailed) queueMicrotask(onFailure);
    const timer = window.setTimeout(() => fail("timeout"), timeoutMs);

    return () => {
      active = false;
      failureListeners.delete(onFailure);
      window.clearTimeout(timer);
    };
  }, [timeoutMs]);

  return status;
}
