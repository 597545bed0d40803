/**
 * Same-origin proxy to the backend (BACKEND_URL), used by the route handlers under
 * src/app/chatkit/. Bodies stream both ways: chat events reach the browser event by event,
 * uploads reach the backend chunk by chunk (a large file is never held here whole).
 * Cookies go up, Set-Cookie comes back, so the backend's session cookie works as if the
 * browser talked to it directly; X-Forwarded-Host/-Proto tell the backend the page's
 * origin, which it uses for the upload and preview URLs it hands out.
 */
import type { NextRequest } from "next/server";

const DEFAULT_BACKEND_URL = "http://127.0.0.1:8000";
// content-length lets the backend refuse an oversized upload before reading it; Node ends the
// body at that length, so the streamed body always matches it.
const REQUEST_HEADERS = [
  "accept",
  "accept-language",
  "authorization",
  "content-length",
  "content-type",
  "cookie",
  "user-agent",
];
// What the chat and the attachment downloads need. (Next.js itself drops Content-Length from a
// route handler's answer and sends it chunked.)
const RESPONSE_HEADERS = [
  "cache-control",
  "content-disposition",
  "content-security-policy",
  "content-type",
  // A refused turn says when to try again (429, 503), a refused token why (401).
  "retry-after",
  "www-authenticate",
  "x-content-type-options",
  "x-request-id",
];

function backendUrl(request: NextRequest): URL {
  const base = process.env.BACKEND_URL?.trim() || DEFAULT_BACKEND_URL;
  // The route handlers live under /chatkit, so the path is always one of the backend's.
  const url = new URL(request.nextUrl.pathname, base);
  url.search = request.nextUrl.search;
  return url;
}

function upstreamHeaders(request: NextRequest): Headers {
  const headers = new Headers();
  for (const name of REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value) headers.set(name, value);
  }
  // Plain bytes from the backend, passed on as they are (never decoded and re-encoded).
  headers.set("accept-encoding", "identity");
  const proto = request.headers.get("x-forwarded-proto") ?? request.nextUrl.protocol.replace(/:$/, "");
  headers.set("x-forwarded-proto", proto);
  headers.set("x-forwarded-host", request.headers.get("x-forwarded-host") ?? request.nextUrl.host);
  // The client's address, which server.mjs sets from the connection (`next dev` passes on
  // what the request brings): the backend counts its per-IP limits by it.
  const forwardedFor = request.headers.get("x-forwarded-for");
  if (forwardedFor) headers.set("x-forwarded-for", forwardedFor);
  return headers;
}

function unreachable(target: URL, error: unknown): Response {
  console.error(`ChatKit proxy: the backend at ${target.origin} did not answer:`, error);
  return Response.json(
    {
      error: {
        code: "backend_unreachable",
        message: "The chat backend does not answer. Start it, or point BACKEND_URL at it.",
      },
    },
    { status: 502 },
  );
}

/** Passes `request` to the same path on the backend and hands the answer back as it arrives. */
export async function proxyToBackend(request: NextRequest): Promise<Response> {
  const target = backendUrl(request);
  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  // `duplex: "half"` lets fetch send a stream: the body goes on as the browser sends it.
  const init: RequestInit & { duplex?: "half" } = {
    method: request.method,
    headers: upstreamHeaders(request),
    cache: "no-store",
    redirect: "manual",
    signal: request.signal,
    ...(hasBody && { body: request.body, duplex: "half" }),
  };
  let upstream: Response;
  try {
    upstream = await fetch(target, init);
  } catch (error) {
    return unreachable(target, error);
  }

  const headers = new Headers();
  for (const name of RESPONSE_HEADERS) {
    const value = upstream.headers.get(name);
    if (value) headers.set(name, value);
  }
  for (const cookie of upstream.headers.getSetCookie()) headers.append("set-cookie", cookie);
  if (headers.get("content-type")?.startsWith("text/event-stream")) {
    headers.set("cache-control", "no-cache, no-transform");
    headers.set("x-accel-buffering", "no");
  }
  // The body stream is handed on as it arrives: each event reaches the browser when produced.
  return new Response(upstream.body, { status: upstream.status, headers });
}
