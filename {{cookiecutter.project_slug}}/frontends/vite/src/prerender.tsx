import { StrictMode } from "react";
import { renderToString } from "react-dom/server";
import { ChatPage } from "./components/ChatPage";

/** The page's first render as HTML, for index.html at build time (vite.page.ts). */
export function render(): string {
  return renderToString(
    <StrictMode>
      <ChatPage />
    </StrictMode>,
  );
}
