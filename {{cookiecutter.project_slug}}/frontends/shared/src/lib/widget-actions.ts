import type { WidgetsOption } from "@openai/chatkit-react";

/**
 * Client-handled widget actions: a widget button whose action has `handler: "client"` runs
 * here, through ChatKit's `widgets.onAction`. Buttons with `handler: "server"` never come
 * here: ChatKit sends those to the backend itself (`threads.custom_action`).
 *
 * Add your own to CLIENT_ACTIONS, under the action's `type` as the backend's widget names it.
 */
type WidgetAction = Parameters<NonNullable<WidgetsOption["onAction"]>>[0];
export type WidgetActionItem = Parameters<NonNullable<WidgetsOption["onAction"]>>[1];
type ClientAction = (payload: Record<string, unknown>, item: WidgetActionItem) => Promise<void>;

export const CLIENT_ACTIONS: Record<string, ClientAction> = {
  // The time card's "Copy" button: its text onto the clipboard.
  "time.copy": async (payload) => {
    const text = payload.text;
    if (typeof text !== "string") throw new Error('time.copy needs a string "text" in its payload');
    if (!navigator.clipboard) throw new Error("the clipboard is unavailable (the page is not on https or localhost)");
    await navigator.clipboard.writeText(text);
  },
};

/** ChatKit's `widgets.onAction`: the action's handler, or a console error naming the fix. */
export async function handleWidgetAction(action: WidgetAction, item: WidgetActionItem): Promise<void> {
  const handler = Object.hasOwn(CLIENT_ACTIONS, action.type) ? CLIENT_ACTIONS[action.type] : undefined;
  if (!handler) {
    console.error(
      `No client handler for the widget action "${action.type}": add it to CLIENT_ACTIONS in src/lib/widget-actions.ts.`,
    );
    return;
  }
  try {
    await handler(action.payload ?? {}, item);
  } catch (error) {
    // The widget stays usable; the console says what went wrong.
    console.error(`The widget action "${action.type}" failed:`, error);
  }
}
