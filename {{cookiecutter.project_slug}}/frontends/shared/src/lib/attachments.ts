import { useEffect, useState } from "react";

/** ChatKit's `composer.attachments` option, exactly as the backend's policy endpoint sends it. */
export type AttachmentPolicy = {
  enabled: boolean;
  maxSize: number;
  maxCount: number;
  accept: Record<string, string[]>;
};

/** The backend's limits live next to the API: `<api url>/attachments/policy`. */
export function policyUrl(apiUrl: string): string {
  return `${apiUrl.replace(/\/+$/, "")}/attachments/policy`;
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
  const [policy, setPolicy] = useState<AttachmentPolicy | null>(null);

  useEffect(() => {
    const url = policyUrl(apiUrl);
    const controller = new AbortController();
    (async () => {
      const response = await fetcher(url, { signal: controller.signal, headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body: unknown = await response.json();
      if (!isPolicy(body)) throw new Error(`unexpected answer ${JSON.stringify(body).slice(0, 200)}`);
      setPolicy(body);
    })().catch((error: unknown) => {
      if (controller.signal.aborted) return;
      console.warn(`Attachments are off: the attachment policy (${url}) could not be loaded:`, error);
    });
    return () => controller.abort();
  }, [apiUrl, fetcher]);

  return policy;
}
