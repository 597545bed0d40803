import { ChatWidget } from "@/components/ChatWidget";
import { SITE } from "@/lib/chatkit-config";

export default function Home() {
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
