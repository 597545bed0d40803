"use client";

import Script from "next/script";
import { CHATKIT_SCRIPT_URL } from "../lib/chatkit-config";
import { markChatKitScriptFailed } from "../lib/chatkit-script";

/** Loads the <openai-chatkit> custom element from OpenAI's CDN (the only place it is served). */
export function ChatKitScript() {
  return <Script src={CHATKIT_SCRIPT_URL} strategy="afterInteractive" onError={markChatKitScriptFailed} />;
}
