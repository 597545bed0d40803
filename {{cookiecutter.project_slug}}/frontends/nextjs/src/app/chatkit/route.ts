/**
 * POST /chatkit: the ChatKit protocol. The browser posts here and the backend's answer
 * streams back event by event (src/lib/backend-proxy.ts).
 */
import { proxyToBackend } from "../../lib/backend-proxy";

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

export { proxyToBackend as POST };
