import type { ModelOption } from "@openai/chatkit-react";
import { apiPath, useBackendJson } from "./backend-json";

/** What the backend's `GET <api url>/models` answers (its MODEL_CHOICES setting). */
type ModelList = { models: ModelOption[] };

function isModelList(value: unknown): value is ModelList {
  if (typeof value !== "object" || value === null) return false;
  const models = (value as Record<string, unknown>).models;
  return (
    Array.isArray(models) &&
    models.every((model: unknown) => {
      if (typeof model !== "object" || model === null) return false;
      const { id, label, default: isDefault } = model as Record<string, unknown>;
      return typeof id === "string" && typeof label === "string" && (isDefault === undefined || typeof isDefault === "boolean");
    })
  );
}

/**
 * The models the composer's picker offers, as the backend allows them (it refuses any other).
 * `null` until they arrive, when the backend offers no choice (an empty list), or when they
 * cannot be had: then there is no picker and every message goes to the backend's model.
 */
export function useModelChoices(apiUrl: string, fetcher: typeof fetch): ModelOption[] | null {
  const list = useBackendJson(apiPath(apiUrl, "models"), fetcher, isModelList, "The model picker is off: the model list");
  return list && list.models.length > 0 ? list.models : null;
}
