/**
 * The production server (`npm start`, the image's CMD): `next start`, except that it sets
 * X-Forwarded-For from the connection. The /chatkit proxy (src/lib/backend-proxy.ts) passes
 * that header to the backend, which counts its per-IP limits by it. A route handler cannot
 * see the connection, and Next.js keeps whatever X-Forwarded-For a request brings, so
 * without this a client could name its own address and escape those limits. It also sends
 * the build's precompressed assets (precompressed-assets.mjs): brotli, which Next.js lacks.
 *
 *   node server.mjs [--hostname 0.0.0.0] [--port 3000]   (PORT also sets the port)
 *
 * TRUSTED_PROXIES (environment or .env files): proxies in front of this server, a comma list
 * of addresses or networks (e.g. 10.0.0.0/8). From them X-Forwarded-For is believed: the
 * client is the right-most address in it that is not one of them. Empty (the default): the
 * connection's peer.
 */
import { createServer } from "node:http";
import { BlockList, isIP } from "node:net";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { precompressedAssets } from "./precompressed-assets.mjs";

/** `::ffff:10.0.0.1` (an IPv4 peer of a dual-stack socket) as `10.0.0.1`. */
function plainAddress(address) {
  const mapped = address.toLowerCase().startsWith("::ffff:") ? address.slice(7) : "";
  return isIP(mapped) === 4 ? mapped : address;
}

function ipType(address) {
  return { 4: "ipv4", 6: "ipv6" }[isIP(address)];
}

/** TRUSTED_PROXIES as a BlockList; a bad entry stops the server, saying what to write. */
function trustedProxies(value) {
  const list = new BlockList();
  for (const entry of (value ?? "").split(",").map((item) => item.trim()).filter(Boolean)) {
    const [address, bits, ...rest] = entry.split("/");
    const type = ipType(address);
    const prefix = bits === undefined ? undefined : /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
    const inRange = prefix === undefined || (prefix >= 0 && prefix <= (type === "ipv6" ? 128 : 32));
    if (!type || rest.length > 0 || !inRange) {
      console.error(
        `TRUSTED_PROXIES: "${entry}" is not an IP address or network; write addresses ` +
          "or networks separated by commas, e.g. 10.0.0.5,172.16.0.0/12",
      );
      process.exit(1);
    }
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  }
  return list;
}

/** The client: the connection's peer, or, while that is a trusted proxy, the address before it. */
function clientAddress(peer, forwardedFor, trusted) {
  const hops = (forwardedFor ?? "").split(",").map((hop) => hop.trim()).filter(Boolean);
  let client = plainAddress(peer ?? "");
  while (hops.length > 0 && ipType(client) && trusted.check(client, ipType(client))) {
    client = plainAddress(hops.pop());
  }
  return client;
}

const { values } = parseArgs({
  options: {
    hostname: { type: "string", short: "H", default: "0.0.0.0" },
    port: { type: "string", short: "p", default: process.env.PORT || "3000" },
  },
});
const port = Number(values.port);
process.env.NODE_ENV = "production";
// Imported once NODE_ENV is set, as `next start` has it.
const { default: next } = await import("next");
const dir = dirname(fileURLToPath(import.meta.url));
const app = next({ dev: false, dir, hostname: values.hostname, port });
const handle = app.getRequestHandler();
await app.prepare();
// Read once Next.js has loaded the .env files.
const trusted = trustedProxies(process.env.TRUSTED_PROXIES);
const servePrecompressed = precompressedAssets(dir);

createServer((request, response) => {
  const forwardedFor = request.headers["x-forwarded-for"];
  const peer = request.socket.remoteAddress;
  request.headers["x-forwarded-for"] = clientAddress(peer, forwardedFor, trusted);
  if (!servePrecompressed(request, response)) void handle(request, response);
}).listen(port, values.hostname, () => {
  console.log(`Ready: listening on ${values.hostname}:${port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
