/**
 * Client tools: tools the backend's agent calls that run here, in the browser. The backend
 * stores the pending call and ends its stream; ChatKit calls `onClientTool` with the tool's
 * name and arguments and sends what it returns back to the backend
 * (`threads.add_client_tool_output`), which goes on with the answer in the model's history.
 *
 * Add your own to CLIENT_TOOLS, under the name the backend's tool uses. The result must be a
 * JSON object: the model reads it as the tool's output.
 */
export type ClientToolCall = { name: string; params: Record<string, unknown> };
export type ClientToolResult = Record<string, unknown>;
type ClientTool = (params: Record<string, unknown>) => ClientToolResult | Promise<ClientToolResult>;

export const CLIENT_TOOLS: Record<string, ClientTool> = {
  // The browser's IANA time zone, e.g. "Europe/Paris": the backend cannot know it.
  get_browser_time_zone: () => ({ time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone }),
};

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * ChatKit's `onClientTool`. It always answers: an unknown tool or a failing one gets an
 * `{error}` result that says so, so the model can tell the user, and the turn never hangs.
 */
export async function runClientTool({ name, params }: ClientToolCall): Promise<ClientToolResult> {
  const tool = Object.hasOwn(CLIENT_TOOLS, name) ? CLIENT_TOOLS[name] : undefined;
  if (!tool) {
    const known = Object.keys(CLIENT_TOOLS).join(", ") || "none";
    const error = `This page has no client tool "${name}" (it has: ${known}). Add it to CLIENT_TOOLS in src/lib/client-tools.ts.`;
    console.error(error);
    return { error };
  }
  try {
    return await tool(params ?? {});
  } catch (failure) {
    console.error(`The client tool "${name}" failed:`, failure);
    return { error: `The client tool "${name}" failed in the browser: ${describe(failure)}` };
  }
}
