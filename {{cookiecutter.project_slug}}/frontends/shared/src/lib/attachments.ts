import { apiPath, useBackendJson } from "./backend-json";

/** ChatKit's `composer.attachments` option, exactly as the backend's policy endpoint sends it. */
export type AttachmentPolicy = {
  enabled: boolean;
  maxSize: number;
  maxCount: number;
  accept: Record<string, string[]>;
};

/** The backend's limits live next to the API: `<api url>/attachments/policy`. */
export function policyUrl(apiUrl: string): string {
  return apiPath(apiUrl, "attachments/policy");
}

function isPolicy(value: unknown): value is AttachmentPolicy {
  if (typeof value !== "object" || value === null) return false;
  const policy = value as Record<string, unknown>;
  const accept = policy.accept;
  return (
    typeof policy.enabled === "boolean" &&
    Number.isInteger(policy.maxSize) &&
    Number.isInteger(policy.maxCount) &&
    typeof accept === "object" &&
    accept !== null &&
    Object.values(accept).every(
      (extensions) => Array.isArray(extensions) && extensions.every((e) => typeof e === "string"),
    )
  );
}

/**
 * The backend's attachment policy, fetched once. `null` until it arrives, and for good when
 * it cannot be had: the chat then works without attachments (the page never guesses limits,
 * so page and server cannot disagree).
 */
export function useAttachmentPolicy(apiUrl: string, fetcher: typeof fetch): AttachmentPolicy | null {
  return useBackendJson(policyUrl(apiUrl), fetcher, isPolicy, "Attachments are off: the attachment policy");
}
