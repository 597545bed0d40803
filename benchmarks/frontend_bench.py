"""The page: both generated frontends built for production and loaded in Chromium, side by
side with other Next.js apps given with `--reference-frontend NAME=DIR`.

* **our frontends**: the template rendered with `frontend=nextjs` and `frontend=vite`,
  `npm ci` and `npm run build` once per run; Next.js served by `npm start`'s server.mjs
  (`next start` plus the build's precompressed brotli assets), Vite's `dist`
  by Debian's nginx running the template's own `nginx.conf.template` (filled in as the
  image's entrypoint does), both in front of the generated backend and the fake provider.
* **references**: each DIR copied (without node_modules, .next, .git), `npm ci` (or
  `npm install` without a lock file), `next build`, `next start`, with dummy
  OPENAI_API_KEY / NEXT_PUBLIC_CHATKIT_WORKFLOW_ID values (never used: nothing leaves the
  loopback).
* **measured**: Debian's Chromium through Playwright, a fresh browser context (empty
  cache, new connections) per load, unthrottled and under emulated Fast 3G (CDP
  Network.emulateNetworkConditions), the pages taking turns. The ChatKit CDN script is
  answered by a stub that defines an empty `<openai-chatkit>` element, so its own weight
  and the CDN's distance are left out; every other request outside the loopback fails.
  Per load: the load event, the first `<openai-chatkit>` in the DOM (a MutationObserver
  installed before any of the page's scripts), first contentful paint, when the ChatKit
  script was requested, and the bytes of every same-origin response (resource timing)
  with its Content-Encoding.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import TEMPLATE, fake_provider, median, ratio, render, say
from benchmarks.stream_bench import generated_service
from reliability.harness import free_port
from tests.browser_support.chromium import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:  # the module imports pytest: loaded only when this section runs
    from tests.browser_support.servers import Server

NGINX = os.environ.get("NGINX_PATH", "/usr/sbin/nginx")
CHATKIT_ORIGIN = "https://cdn.platform.openai.com"
CHATKIT_SCRIPT_URL = CHATKIT_ORIGIN + "/deployments/chatkit/chatkit.js"
# Defines the element and nothing else: the page's own work is what is measured.
CHATKIT_STUB = (
    "customElements.get('openai-chatkit') || customElements.define('openai-chatkit',"
    " class extends HTMLElement { setOptions() {} });"
)
# Chrome DevTools' Fast 3G figures: 150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up.
FAST_3G = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1_600_000 / 8,
    "uploadThroughput": 750_000 / 8,
}
CONDITIONS = ("unthrottled", "fast3g")
NPM_ENV = {
    "NEXT_TELEMETRY_DISABLED": "1",
    "npm_config_audit": "false",
    "npm_config_fund": "false",
    "npm_config_update_notifier": "false",
}
NPM_TIMEOUT = 1200
LOAD_TIMEOUT_MS = 60_000
COPY_SKIP = {"node_modules", ".next", ".git", "dist"}

# Runs before any script of the page: the first <openai-chatkit> in the DOM, on the clock
# the navigation timing uses (parser insertion and React's both trigger the observer).
ELEMENT_PROBE = """
(() => {
  const seen = () => {
    if (window.__benchElementAt === undefined && document.querySelector("openai-chatkit")) {
      window.__benchElementAt = performance.now();
    }
  };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true });
})();
"""
COLLECT = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const resources = performance.getEntriesByType("resource").map((entry) => ({
    url: entry.name,
    initiator: entry.initiatorType,
    start: entry.startTime,
    transfer: entry.transferSize,
    encoded: entry.encodedBodySize,
    decoded: entry.decodedBodySize,
  }));
  return {
    load: nav.loadEventEnd,
    responseStart: nav.responseStart,
    domContentLoaded: nav.domContentLoadedEventEnd,
    element: window.__benchElementAt ?? null,
    fcp: paint ? paint.startTime : null,
    document: {
      transfer: nav.transferSize,
      encoded: nav.encodedBodySize,
      decoded: nav.decodedBodySize,
    },
    resources,
  };
}
"""


@dataclass
class Target:
    """One page to measure: how it was built and the server that serves it."""

    key: str
    label: str
    kind: str  # "nextjs" (server.mjs, or a reference's next start) or "vite" (nginx)
    directory: Path
    build_seconds: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    server: Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def run_step(name: str, command: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Run a build step; its output goes to `log`, the last of it into the error on failure."""
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(
            command,
            cwd=cwd,
            env={**os.environ, **NPM_ENV, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"{name}: `{' '.join(command)}` exited {result.returncode}:\n{log.read_text()[-6000:]}"
        )
    return time.perf_counter() - started


def template_state() -> str:
    """The template's commit when the frontends are rendered (others may commit meanwhile)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=TEMPLATE, capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = git("status", "--porcelain", "--", "{{cookiecutter.project_slug}}", "hooks")
    commit = git("rev-parse", "--short", "HEAD")
    return commit + (" with uncommitted changes" if changed else "")


def package_version(directory: Path, package: str) -> str:
    try:
        data = json.loads((directory / "node_modules" / package / "package.json").read_text())
    except OSError:
        return "not installed"
    return str(data["version"])


def build_ours(kind: str, scratch: Path) -> Target:
    project = render(scratch / f"frontend-{kind}", frontend=kind)
    directory = project / "frontend"
    prefix = "NEXT_PUBLIC_" if kind == "nextjs" else "VITE_"
    target = Target(
        kind, "ours, Next.js" if kind == "nextjs" else "ours, Vite (nginx)", kind, directory
    )
    log = scratch / f"build-{kind}.log"
    say(f"building {target.label} in {directory}")
    target.build_seconds["npm ci"] = run_step(
        target.label, ["npm", "ci", "--prefer-offline"], directory, {}, log
    )
    # A domain key, as a deployment has; the API URL stays same-origin (/chatkit).
    env = {f"{prefix}CHATKIT_DOMAIN_KEY": "domain_pk_benchmark"}
    target.build_seconds["build"] = run_step(
        target.label, ["npm", "run", "build"], directory, env, log
    )
    for package in ("next" if kind == "nextjs" else "vite", "react", "@openai/chatkit-react"):
        target.versions[package] = package_version(directory, package)
    return target


def build_reference(name: str, source: Path, scratch: Path) -> Target:
    directory = scratch / f"reference-{len(list(scratch.glob('reference-*')))}"
    shutil.copytree(source, directory, ignore=lambda _dir, names: COPY_SKIP & set(names))
    target = Target(f"reference:{name}", name, "nextjs", directory)
    log = scratch / f"build-{directory.name}.log"
    say(f"building {name} (a copy of {source}) in {directory}")
    install = ["npm", "ci"] if (directory / "package-lock.json").exists() else ["npm", "install"]
    target.build_seconds[" ".join(install)] = run_step(
        name, [*install, "--prefer-offline"], directory, {}, log
    )
    target.build_seconds["next build"] = run_step(
        name, ["node", "node_modules/.bin/next", "build"], directory, reference_env(), log
    )
    for package in ("next", "react", "@openai/chatkit-react"):
        target.versions[package] = package_version(directory, package)
    return target


def reference_env() -> dict[str, str]:
    # Dummies: a reference may check for them at build or start; nothing here calls OpenAI.
    return {
        "OPENAI_API_KEY": "sk-benchmark-dummy",
        "NEXT_PUBLIC_CHATKIT_WORKFLOW_ID": "wf_benchmark",
    }


# --- serving --------------------------------------------------------------------------------


def serve(target: Target, backend_url: str, scratch: Path) -> None:
    from tests.browser_support.nginx import nginx_command
    from tests.browser_support.servers import Server

    log = scratch / f"serve-{target.directory.name}.log"
    if target.kind == "vite":
        # The image's set-up, as the nginx tests run it: the template filled in as its
        # entrypoint does, the build's nginx/ files, no gzip or modules of nginx's own.
        command = nginx_command(target.directory, backend_url, target.port, scratch / "nginx")
        env: dict[str, str] = {}
    else:
        address = ["-H", "127.0.0.1", "-p", str(target.port)]
        env = {"BACKEND_URL": backend_url, "NEXT_TELEMETRY_DISABLED": "1", "NODE_ENV": "production"}
        # Ours as `npm start` and its image run it (server.mjs: next, plus the build's
        # precompressed assets); a reference as `next start`.
        if target.key.startswith("reference:"):
            command = ["node", "node_modules/.bin/next", "start", *address]
            env.update(reference_env())
        else:
            command = ["node", "server.mjs", *address]
    target.server = Server(target.label, command, target.directory, env, log)
    target.server.wait_until_up(target.url + "/", timeout=120)


def nginx_version() -> str:
    result = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
    return (result.stderr or result.stdout).strip().removeprefix("nginx version: ")


# --- measuring ------------------------------------------------------------------------------


def load_once(browser: Any, target: Target, condition: str) -> dict[str, Any]:
    """One cold load of the page in a fresh context; the figures of `COLLECT`."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    encodings: dict[str, str] = {}
    statuses: dict[str, int] = {}
    blocked: list[str] = []

    def route(route: Any) -> None:
        url = route.request.url
        if url.split("?")[0] == CHATKIT_SCRIPT_URL:
            route.fulfill(status=200, content_type="text/javascript", body=CHATKIT_STUB)
        else:
            blocked.append(url)
            route.abort("blockedbyclient")

    def response(response: Any) -> None:
        if response.url.startswith(target.url):
            encodings[response.url] = response.headers.get("content-encoding", "none")
            statuses[response.url] = response.status

    try:
        # Only what leaves the loopback is intercepted; the page's own requests go straight.
        context.route("https://**/*", route)
        context.add_init_script(ELEMENT_PROBE)
        page = context.new_page()
        page.on("response", response)
        if condition == "fast3g":
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", FAST_3G)
        page.goto(target.url + "/", wait_until="load", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function("window.__benchElementAt !== undefined", timeout=LOAD_TIMEOUT_MS)
        try:  # late requests (prefetches) count too, up to a quiet network
            page.wait_for_load_state("networkidle", timeout=10_000)
        except Exception:
            pass
        data: dict[str, Any] = page.evaluate(COLLECT)
    finally:
        context.close()
    return summarize(data, target.url, encodings, statuses, blocked)


def summarize(
    data: dict[str, Any],
    origin: str,
    encodings: dict[str, str],
    statuses: dict[str, int],
    blocked: list[str],
) -> dict[str, Any]:
    own = [entry for entry in data["resources"] if entry["url"].startswith(origin)]
    scripts = [entry for entry in own if entry["url"].split("?")[0].endswith((".js", ".mjs"))]
    chatkit = [entry for entry in data["resources"] if entry["url"].startswith(CHATKIT_SCRIPT_URL)]
    document = data["document"]
    return {
        "load_ms": data["load"],
        "element_ms": data["element"],
        "fcp_ms": data["fcp"],
        "dcl_ms": data["domContentLoaded"],
        "ttfb_ms": data["responseStart"],
        "script_requested_ms": chatkit[0]["start"] if chatkit else None,
        "js_transfer": sum(entry["transfer"] for entry in scripts),
        "js_encoded": sum(entry["encoded"] for entry in scripts),
        "js_decoded": sum(entry["decoded"] for entry in scripts),
        "js_files": len(scripts),
        "js_encodings": sorted({encodings.get(entry["url"], "?") for entry in scripts}),
        "all_transfer": document["transfer"] + sum(entry["transfer"] for entry in own),
        "html_transfer": document["transfer"],
        "html_decoded": document["decoded"],
        "requests": 1 + len(own),
        "failed": sorted(url for url, status in statuses.items() if status >= 400),
        "blocked": sorted(set(blocked)),
        # Each script (path, on the wire, raw, encoding), for reading what the bytes are.
        "scripts": [
            [
                entry["url"][len(origin) :],
                entry["transfer"],
                entry["decoded"],
                encodings.get(entry["url"], "?"),
            ]
            for entry in scripts
        ],
    }


def measure(targets: list[Target], repetitions: int, warmup: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        target.key: {condition: [] for condition in CONDITIONS} for target in targets
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for _ in range(warmup):  # first requests: caches of the servers, lazy imports
                for target in targets:
                    load_once(browser, target, "unthrottled")
            for repetition in range(repetitions):
                # The pages take turns; the order rotates so none always goes first.
                shift = repetition % len(targets)
                order = targets[shift:] + targets[:shift]
                for condition in CONDITIONS:
                    for target in order:
                        runs[target.key][condition].append(load_once(browser, target, condition))
            version = browser.version
        finally:
            browser.close()
    return {"runs": runs, "chromium": version}


MEDIANS = (
    "load_ms",
    "element_ms",
    "fcp_ms",
    "dcl_ms",
    "ttfb_ms",
    "script_requested_ms",
    "js_transfer",
    "js_encoded",
    "js_decoded",
    "all_transfer",
    "html_transfer",
    "requests",
    "js_files",
)


def figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in MEDIANS:
        values = [run[name] for run in runs if run[name] is not None]
        out[name] = median(values)
        out[name + "_range"] = (min(values), max(values)) if values else (None, None)
    out["js_encodings"] = sorted({e for run in runs for e in run["js_encodings"]})
    out["failed"] = sorted({url for run in runs for url in run["failed"]})
    out["blocked"] = sorted({url for run in runs for url in run["blocked"]})
    return out


def run(
    backend: Path,
    scratch: Path,
    quick: bool,
    references: dict[str, Path] | None = None,
) -> dict[str, Any]:
    repetitions, warmup = (1, 0) if quick else (5, 1)
    references = references or {}
    load_before = os.getloadavg()
    started = time.perf_counter()
    rendered_from = template_state()
    targets = [build_ours("nextjs", scratch), build_ours("vite", scratch)]
    targets += [build_reference(name, path, scratch) for name, path in references.items()]
    build_seconds = time.perf_counter() - started
    backend_service = None
    load_measuring = load_before
    with fake_provider(backend, scratch) as fake_url:
        try:
            backend_service = generated_service(
                backend,
                fake_url,
                f"sqlite+aiosqlite:///{scratch / 'frontend-bench.db'}",
                name="frontend-backend",
            ).start(scratch)
            for target in targets:
                serve(target, backend_service.url, scratch)
            say(f"measuring {', '.join(t.label for t in targets)}: {repetitions} load(s) each")
            load_measuring = os.getloadavg()
            measured = measure(targets, repetitions, warmup)
        finally:
            for target in targets:
                if target.server is not None:
                    target.server.stop()
            if backend_service is not None:
                backend_service.stop()
    results: dict[str, Any] = {
        "repetitions": repetitions,
        "warmup": warmup,
        "fast3g": FAST_3G,
        "chatkit_script": CHATKIT_SCRIPT_URL,
        "chromium": measured["chromium"],
        "nginx": nginx_version(),
        "node": subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "build_seconds_total": build_seconds,
        "rendered_from": rendered_from,
        "load_before": load_before,
        "load_measuring": load_measuring,
        "load_after": os.getloadavg(),
        "references": [f"reference:{name}" for name in references],
        "references_source": {f"reference:{name}": str(path) for name, path in references.items()},
        "targets": {},
    }
    for target in targets:
        results["targets"][target.key] = {
            "label": target.label,
            "kind": target.kind,
            "build_seconds": target.build_seconds,
            "versions": target.versions,
            "figures": {
                condition: figures(measured["runs"][target.key][condition])
                for condition in CONDITIONS
            },
            "runs": measured["runs"][target.key],
        }
    results["ratios"] = ratios(results)
    print_side_by_side(results)
    return results


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Ours ÷ each reference, per condition, for the times and the JS on the wire."""
    out: dict[str, Any] = {}
    for reference in results["references"]:
        theirs = results["targets"][reference]["figures"]
        for key in ("nextjs", "vite"):
            ours = results["targets"][key]["figures"]
            out.setdefault(reference, {})[key] = {
                condition: {
                    name: ratio(ours[condition][name], theirs[condition][name])
                    for name in ("load_ms", "element_ms", "fcp_ms", "js_transfer", "all_transfer")
                }
                for condition in CONDITIONS
            }
    return out


def print_side_by_side(results: dict[str, Any]) -> None:
    keys = list(results["targets"])
    rows = [["", *(results["targets"][key]["label"] for key in keys)]]
    for condition in CONDITIONS:
        for name in ("load_ms", "element_ms", "fcp_ms"):
            rows.append(
                [
                    f"{condition} {name}",
                    *(f"{results['targets'][key]['figures'][condition][name]:.0f}" for key in keys),
                ]
            )
    rows.append(
        [
            "JS on the wire (B)",
            *(
                f"{results['targets'][key]['figures']['unthrottled']['js_transfer']:.0f}"
                for key in keys
            ),
        ]
    )
    for reference, by_ours in results["ratios"].items():
        for key, by_condition in by_ours.items():
            for condition, values in by_condition.items():
                text = ", ".join(f"{name} {value:.2f}x" for name, value in values.items())
                rows.append([f"{key} / {reference} {condition}", text])
    width = max(len(row[0]) for row in rows)
    for row in rows:
        say(row[0].ljust(width) + "  " + " | ".join(row[1:]))
