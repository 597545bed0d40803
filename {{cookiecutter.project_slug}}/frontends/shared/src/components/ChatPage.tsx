import { SITE } from "../lib/chatkit-config";
import { AuthHeader } from "./AuthHeader";
import { ChatWidget } from "./ChatWidget";

/** The whole page: the project's name and description above the chat; sign-in when configured. */
export function ChatPage() {
  return (
    <main className="page">
      <header className="page-header">
        <h1>{SITE.projectName}</h1>
        <p>{SITE.description}</p>
        <AuthHeader />
      </header>
      <ChatWidget />
    </main>
  );
}
