/**
 * GET /chatkit/models: the models the composer's picker offers (the backend's MODEL_CHOICES),
 * passed to the backend like every /chatkit request (src/lib/backend-proxy.ts).
 */
import { proxyToBackend } from "../../../lib/backend-proxy";

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

export { proxyToBackend as GET };
