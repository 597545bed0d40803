/**
 * /chatkit/attachments/**: the attachment policy, uploads (POST or PUT, streamed to the
 * backend as they arrive) and downloads (previews, with the backend's headers), all passed
 * to the same path on the backend (src/lib/backend-proxy.ts).
 */
import { proxyToBackend } from "../../../../lib/backend-proxy";

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

export { proxyToBackend as GET, proxyToBackend as POST, proxyToBackend as PUT };
