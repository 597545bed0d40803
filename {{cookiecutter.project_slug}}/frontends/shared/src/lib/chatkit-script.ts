import { useEffect, useState } from "react";

export type ScriptStatus = "loading" | "ready" | "error" | "timeout";

// The script tag is in the document head, with the inline loader (chatkit-loader.mjs) before
// it: the loader records a load error in this flag and event, even before any React code runs.
const FAILED_FLAG = "__chatkitScriptFailed";
const FAILED_EVENT = "chatkit-script-failed";

declare global {
  interface Window {
    __chatkitScriptFailed?: boolean;
  }
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
    window.addEventListener(FAILED_EVENT, onFailure);
    if (window[FAILED_FLAG]) queueMicrotask(onFailure);
    const timer = window.setTimeout(() => fail("timeout"), timeoutMs);

    return () => {
      active = false;
      window.removeEventListener(FAILED_EVENT, onFailure);
      window.clearTimeout(timer);
    };
  }, [timeoutMs]);

  return status;
}
