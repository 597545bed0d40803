"use client"; // Rendered in the browser; bundlers without server components ignore this line.

import { ChatKit, useChatKit } from "@openai/chatkit-react";
import { useCallback, useRef, useState } from "react";
import { useAttachmentPolicy } from "../lib/attachments";
import { authFetch, signIn, useAuth } from "../lib/auth";
import { readStoredThread, storeThread, useColorScheme, useHostname } from "../lib/browser";
import { CHATKIT_API_URL, SITE, resolveDomainKey } from "../lib/chatkit-config";
import {
  chatkitProblem,
  missingKeyProblem,
  readRefusal,
  refusalProblem,
  scriptProblem,
  type Problem,
} from "../lib/chatkit-errors";
import { useChatKitScript, type ScriptStatus } from "../lib/chatkit-script";
import { runClientTool } from "../lib/client-tools";
import { useModelChoices } from "../lib/models";
import { handleWidgetAction } from "../lib/widget-actions";
import { ProblemNotice } from "./ProblemNotice";

export function ChatWidget() {
  const hostname = useHostname();
  const scriptStatus = useChatKitScript();
  const domainKey = resolveDomainKey(hostname);
  const auth = useAuth();

  if (auth.status === "loading") {
    return <div className="chat-shell" aria-busy="true" />;
  }
  if (auth.status === "signed-out") {
    return (
      <div className="chat-shell">
        {auth.error && <ProblemNotice problem={{ title: "Not signed in", steps: [auth.error] }} />}
        <div className="sign-in-panel">
          <p>Sign in to chat.</p>
          <button type="button" onClick={() => void signIn()} data-testid="sign-in-panel">
            Sign in
          </button>
        </div>
      </div>
    );
  }

  if (domainKey === null) {
    if (hostname === null) {
      // Server render without a configured key: the key waits for the hostname (local
      // hosts only get the development key). The HTML holds a bare element until then.
      return (
        <div className="chat-shell" aria-busy="true">
          <openai-chatkit className="chatkit" />
        </div>
      );
    }
    return (
      <div className="chat-shell">
        <ProblemNotice problem={missingKeyProblem(hostname)} />
      </div>
    );
  }
  // With a configured key this is the server's render too: <openai-chatkit> is in the HTML.
  return <ChatPanel hostname={hostname} domainKey={domainKey} scriptStatus={scriptStatus} />;
}

// `hostname` is null only in the server's render and hydration, before any error can arrive.
type PanelProps = { hostname: string | null; domainKey: string; scriptStatus: ScriptStatus };

function ChatPanel({ hostname, domainKey, scriptStatus }: PanelProps) {
  const colorScheme = useColorScheme();
  const [initialThread] = useState(readStoredThread);
  const [error, setError] = useState<unknown>(null);
  const [refusal, setRefusal] = useState<Problem | null>(null);
  const threadLoaded = useRef(false);
  // Sends the cookie or the access token (lib/auth.ts); a refusal (too fast, too long, not
  // signed in) is shown above the chat, with what to do.
  const chatFetch = useCallback<typeof fetch>(async (input, init) => {
    const response = await authFetch(input, init);
    const refused = await readRefusal(response);
    if (refused) setRefusal(refusalProblem(refused));
    return response;
  }, []);
  // The widget starts without attachments and gets them once the backend's policy arrives.
  const attachments = useAttachmentPolicy(CHATKIT_API_URL, chatFetch);
  const uploads = attachments?.enabled === true;
  // The same for the model picker: none until the backend's list (MODEL_CHOICES) arrives.
  const models = useModelChoices(CHATKIT_API_URL, chatFetch);

  const chatkit = useChatKit({
    api: {
      url: CHATKIT_API_URL,
      domainKey,
      fetch: chatFetch,
      // Two-phase: attachments.create answers with where to upload the bytes (see the backend).
      ...(uploads && { uploadStrategy: { type: "two_phase" } }),
    },
    theme: { colorScheme, radius: "round" },
    initialThread,
    header: { enabled: true, title: { enabled: true } },
    history: { enabled: true, showRename: true, showDelete: true },
    startScreen: { greeting: SITE.greeting, prompts: SITE.prompts },
    composer: {
      placeholder: SITE.composerPlaceholder,
      ...(uploads && { attachments }),
      ...(models && { models }),
    },
    // Thumbs up/down (stored by the backend) and retry on each reply. The stop button is
    // ChatKit's own: on while a reply streams, as the backend allows it (allow_cancel).
    threadItemActions: { feedback: true, retry: true },
    // Tools the agent runs in the browser (lib/client-tools.ts).
    onClientTool: runClientTool,
    // Widget buttons handled in the page (lib/widget-actions.ts); server ones go to the backend.
    widgets: { onAction: handleWidgetAction },
    onThreadChange: ({ threadId }) => storeThread(threadId),
    // A new turn: what went wrong with the last one is over.
    onResponseStart: () => {
      setRefusal(null);
      setError(null);
    },
    onThreadLoadEnd: () => {
      threadLoaded.current = true;
    },
    onError: ({ error }) => {
      console.error("ChatKit error:", error);
      // The remembered thread could not be opened (deleted, or another session's): forget it.
      if (initialThread && !threadLoaded.current) storeThread(null);
      setError(error);
    },
  });

  const scriptFailed = scriptStatus === "error" || scriptStatus === "timeout";
  // A refusal comes with ChatKit's own error for the same request: the refusal says more.
  const problem = scriptFailed
    ? scriptProblem(scriptStatus)
    : (refusal ??
      (error ? chatkitProblem(error, hostname ?? window.location.hostname) : null));
  const dismiss = () => {
    setRefusal(null);
    setError(null);
  };

  return (
    <div className="chat-shell">
      {problem && (
        <ProblemNotice problem={problem} onDismiss={error || refusal ? dismiss : undefined} />
      )}
      {scriptStatus === "loading" && <p className="chat-loading">Loading chat…</p>}
      {!scriptFailed && <ChatKit control={chatkit.control} className="chatkit" />}
    </div>
  );
}
