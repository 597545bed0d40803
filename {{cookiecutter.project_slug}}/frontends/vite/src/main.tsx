import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ChatPage } from "./components/ChatPage";
import { CHATKIT_SCRIPT_URL } from "./lib/chatkit-config";
import { markChatKitScriptFailed } from "./lib/chatkit-script";
import "./styles.css";

/** Adds the CDN script that defines <openai-chatkit> (the only place it is served). */
function loadChatKitScript(): void {
  if (document.querySelector(`script[src="${CHATKIT_SCRIPT_URL}"]`)) return;
  const script = document.createElement("script");
  script.src = CHATKIT_SCRIPT_URL;
  script.async = true;
  script.addEventListener("error", markChatKitScriptFailed);
  document.head.append(script);
}

loadChatKitScript();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ChatPage />
  </StrictMode>,
);
