import { ChatWidget } from "./components/ChatWidget";
import { SITE } from "./lib/chatkit-config";

export function App() {
  return (
    <main className="page">
      <header className="page-header">
        <h1>{SITE.projectName}</h1>
        <p>{SITE.description}</p>
      </header>
      <ChatWidget />
    </main>
  );
}
