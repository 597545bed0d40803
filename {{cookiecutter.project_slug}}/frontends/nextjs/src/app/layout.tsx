import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import { ChatKitScript } from "../components/ChatKitScript";
import { SITE } from "../lib/chatkit-config";
import "../styles.css";

export const metadata: Metadata = {
  title: SITE.projectName,
  description: SITE.description,
  icons: { icon: { url: "/favicon.svg", type: "image/svg+xml" } },
};

export const viewport: Viewport = {
  colorScheme: "light dark",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <head>
        <ChatKitScript />
      </head>
      <body>{children}</body>
    </html>
  );
}
