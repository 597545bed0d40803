import { useEffect, useState } from "react";

/** The backend's own JSON endpoints live next to the ChatKit API: `<api url>/<path>`. */
export function apiPath(apiUrl: string, path: string): string {
  return `${apiUrl.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/**
 * One JSON document from the backend (`GET url`), fetched once, after the first render:
 * the widget never waits for it. `null` until it arrives, and for good when it cannot be
 * had or is not what `accept` expects: the feature it configures then stays off, and the
 * console says why (`offMessage`, e.g. "Attachments are off").
 */
export function useBackendJson<T>(
  url: string,
  fetcher: typeof fetch,
  accept: (value: unknown) => value is T,
  offMessage: string,
): T | null {
  const [value, setValue] = useState<T | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    (async () => {
      const response = await fetcher(url, { signal: controller.signal, headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body: unknown = await response.json();
      if (!accept(body)) throw new Error(`unexpected answer ${JSON.stringify(body).slice(0, 200)}`);
      setValue(body);
    })().catch((error: unknown) => {
      if (controller.signal.aborted) return;
      console.warn(`${offMessage}: ${url} could not be loaded:`, error);
    });
    return () => controller.abort();
  }, [url, fetcher, accept, offMessage]);

  return value;
}
