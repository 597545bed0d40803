// The ChatKit script tag's companion, for the document head of both frontends. The script
// is requested from the head, before the app's bundle runs, so a load error can happen before
// any React code listens: this inline script records it for src/lib/chatkit-script.ts.
import { createHash } from "node:crypto";

/** The ChatKit UI script. It is only served by OpenAI's CDN; no npm package bundles it. */
export const CHATKIT_SCRIPT_URL = "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js";

export const SCRIPT_FAILED_FLAG = "__chatkitScriptFailed";
export const SCRIPT_FAILED_EVENT = "chatkit-script-failed";

// Resource load errors do not bubble, but a capturing listener on window sees them.
export const CHATKIT_LOADER =
  `addEventListener("error",function(e){var t=e.target;if(t&&t.tagName==="SCRIPT"&&t.src===${JSON.stringify(CHATKIT_SCRIPT_URL)}){` +
  `window.${SCRIPT_FAILED_FLAG}=true;dispatchEvent(new Event(${JSON.stringify(SCRIPT_FAILED_EVENT)}))}},true);`;

/** CHATKIT_LOADER's CSP source, so a policy can allow exactly this inline script. */
export const LOADER_HASH = `'sha256-${createHash("sha256").update(CHATKIT_LOADER).digest("base64")}'`;
