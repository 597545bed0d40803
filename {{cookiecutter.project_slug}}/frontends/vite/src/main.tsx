import { StrictMode } from "react";
import { createRoot, hydrateRoot } from "react-dom/client";
import { ChatPage } from "./components/ChatPage";
import "./styles.css";

// index.html loads the ChatKit script itself, in its head (vite.page.ts).
const root = document.getElementById("root")!;
const page = (
  <StrictMode>
    <ChatPage />
  </StrictMode>
);
// A build renders the page into index.html (src/prerender.tsx); the dev server does not.
if (root.hasChildNodes()) hydrateRoot(root, page);
else createRoot(root).render(page);
