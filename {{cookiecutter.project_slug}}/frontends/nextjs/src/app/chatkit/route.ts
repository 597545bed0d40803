/**
 * Same-origin proxy: the browser posts ChatKit requests to /chatkit and this
 * handler passes them to the backend (BACKEND_URL), streaming the answer back
 * event by event. Cookies go up, Set-Cookie comes back, so the backend's
 * session cookie works as if the browser talked to it directly.
 */
import type { NextRequest } from "next/server";

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

const DEFAULT_BACKEND_URL = "http://127.0.0.1:8000";
const REQUEST_HEADERS = ["accept", "accept-language", "authorization", "content-type", "cookie", "user-agent"];
const RESPONSE_HEADERS = ["cache-control", "content-type", "x-request-id"];

function backendUrl(request: NextRequest): URL {
  const base = process.env.BACKEND_URL?.trim() || DEFAULT_BACKEND_URL;
  const url = new URL("/chatkit", base);
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
  const forwardedFor = request.headers.get("x-forwarded-for");
  if (forwardedFor) headers.set("x-forwarded-for", forwardedFor);
  return headers;
}

export async function POST(request: NextRequest): Promise<Response> {
  const target = backendUrl(request);
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: "POST",
      headers: upstreamHeaders(request),
      body: await request.arrayBuffer(),
      cache: "no-store",
      redirect: "manual",
      signal: request.signal,
    });
  } catch (error) {
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
