import { useEffect, useState } from "react";
import { CHATKIT_SCRIPT_URL } from "./chatkit-config";

export type ScriptStatus = "loading" | "ready" | "error" | "timeout";

let scriptFailed = false;
const failureListeners = new Set<() => void>();

/** Adds the CDN script that defines <openai-chatkit> (the only place it is served). */
export function loadChatKitScript(): void {
  if (document.querySelector(`script[src="${CHATKIT_SCRIPT_URL}"]`)) return;
  const script = document.createElement("script");
  script.src = CHATKIT_SCRIPT_URL;
  script.async = true;
  script.addEventListener("error", () => {
    scriptFailed = true;
    failureListeners.forEach((listener) => listener());
  });
  document.head.append(script);
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
