import { CHATKIT_LOADER, CHATKIT_SCRIPT_URL } from "../../chatkit-loader.mjs";
import { CHATKIT_SCRIPT_ORIGIN } from "../../security-headers.mjs";

/**
 * The <openai-chatkit> element's script, from OpenAI's CDN (the only place it is served),
 * requested from the document head so it loads while the page's own bundle does. The inline
 * loader before it records a load error for the widget (src/lib/chatkit-script.ts). `defer`,
 * not `async`: React would hoist an async script above the loader, and a deferred one cannot
 * fail before the loader listens (it runs, or fails, once the document is parsed).
 */
export function ChatKitScript() {
  return (
    <>
      <link rel="preconnect" href={CHATKIT_SCRIPT_ORIGIN} />
      <script dangerouslySetInnerHTML={{ __html: CHATKIT_LOADER }} />
      <script src={CHATKIT_SCRIPT_URL} defer />
    </>
  );
}
