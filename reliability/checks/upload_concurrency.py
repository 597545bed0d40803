"""13. Concurrent uploads: many files streaming in at once, from several users.

Every attachment is created first, then all uploads start together (multipart POST, raw
POST and raw PUT in turn, files of one to three chunks), then all downloads together.
Nothing may be lost: every upload answers 200 and every file reads back byte-identical
to its owner, and no "database is locked" appears in the log.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import httpx

from reliability.checks.attachment_support import (
    CHUNK_BYTES,
    content_path,
    digest,
    new_attachment,
    png,
    text_file,
    upload_path,
)
from reliability.harness import Backend, Project
from reliability.suite import Row, Suite

CHECK = "13. Concurrent uploads"
USERS = 5
STYLES = ("multipart", "raw", "put")


async def _upload(
    suite: Suite, backend: Backend, cookie: str, job: dict[str, Any], latencies: list[float]
) -> str:
    async with httpx.AsyncClient(base_url=backend.url, timeout=120) as client:
        client.cookies.set("chatkit_session", cookie, domain="127.0.0.1", path="/")
        path, data, mime = upload_path(job["attachment"]), job["data"], job["mime"]
        began = time.monotonic()
        if job["style"] == "multipart":
            response = await client.post(path, files={"file": ("f", data, mime)})
        else:
            method = "PUT" if job["style"] == "put" else "POST"
            response = await client.request(
                method, path, content=data, headers={"content-type": mime}
            )
        latencies.append(time.monotonic() - began)
        suite.recorder.record(response.status_code, response.headers, response.content, "upload")
        if response.status_code != 200:
            return f"{job['style']} upload: HTTP {response.status_code} {response.text[:200]}"
    return ""


async def _download(suite: Suite, backend: Backend, cookie: str, job: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=backend.url, timeout=120) as client:
        client.cookies.set("chatkit_session", cookie, domain="127.0.0.1", path="/")
        response = await client.get(content_path(job["attachment"]["id"]))
        suite.recorder.record(response.status_code, response.headers, response.content, "download")
        if response.status_code != 200:
            return f"download: HTTP {response.status_code}"
        if response.content != job["data"]:
            return (
                f"download: {len(response.content)} bytes, {digest(response.content)}, "
                f"expected {len(job['data'])} bytes, {digest(job['data'])}"
            )
    return ""


async def _all(suite: Suite, backend: Backend, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies: list[float] = []
    began = time.monotonic()
    uploads = await asyncio.gather(
        *(_upload(suite, backend, job["cookie"], job, latencies) for job in jobs)
    )
    upload_seconds = time.monotonic() - began
    began = time.monotonic()
    downloads = await asyncio.gather(
        *(_download(suite, backend, job["cookie"], job) for job in jobs)
    )
    return {
        "uploads": uploads,
        "downloads": downloads,
        "upload seconds": upload_seconds,
        "download seconds": time.monotonic() - began,
        "latencies": latencies,
    }


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    rng = random.Random(suite.seed + 13)
    backend = suite.running(project, "uploads")
    log_start = len(backend.log_text())
    count = suite.sizes.concurrent_uploads
    jobs: list[dict[str, Any]] = []
    browsers = [suite.browser(backend) for _ in range(USERS)]
    try:
        for n in range(count):
            browser = browsers[n % USERS]
            size = rng.randint(1, 3) * CHUNK_BYTES - rng.randint(0, 5000)
            mime = "text/plain" if n % 5 == 4 else "image/png"
            data = text_file(rng, size) if mime == "text/plain" else png(rng, size)
            attachment = new_attachment(browser, f"concurrent-{n}", data, mime)
            jobs.append(
                {
                    "attachment": attachment,
                    "data": data,
                    "mime": mime,
                    "style": STYLES[n % len(STYLES)],
                    "cookie": browser.cookie or "",
                }
            )
        outcome = asyncio.run(_all(suite, backend, jobs))
    finally:
        for browser in browsers:
            browser.close()
    log = backend.log_text()[log_start:]
    locked = log.count("database is locked")
    failed_uploads = [p for p in outcome["uploads"] if p]
    bad_downloads = [p for p in outcome["downloads"] if p]
    if failed_uploads:
        failures.append(f"{len(failed_uploads)} uploads failed: {failed_uploads[:3]}")
    if bad_downloads:
        failures.append(f"{len(bad_downloads)} files did not read back: {bad_downloads[:3]}")
    if locked:
        failures.append(f'"database is locked" {locked} times in the log')
    megabytes = sum(len(job["data"]) for job in jobs) / 1e6
    latencies = sorted(outcome["latencies"]) or [0.0]
    figures = [
        f"{count} uploads at once by {USERS} users ({megabytes:.1f} MB, 1-3 chunks each, "
        f"multipart POST / raw POST / raw PUT): {count - len(failed_uploads)} answered 200 in "
        f"{outcome['upload seconds']:.1f} s (median {statistics.median(latencies):.2f} s, "
        f"max {latencies[-1]:.2f} s)",
        f"read back byte-identical: {count - len(bad_downloads)}/{count} "
        f'(all at once, {outcome["download seconds"]:.1f} s); "database is locked": {locked}',
    ]
    metrics = {
        "uploads": count,
        "failed uploads": len(failed_uploads),
        "identical": count - len(bad_downloads),
        "database is locked": locked,
    }
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
