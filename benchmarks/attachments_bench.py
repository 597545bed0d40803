"""Attachments: a large file through the generated backend, against the upload floor, and
what images in the history cost a turn. Everything in one run, side by side:

* **large file**: upload (raw POST, and multipart POST as chatkit-js sends it) and
  download of one big file through the generated backend on SQLite; its resident set
  (psutil `rss` on the server process, sampled every 10 ms) during each transfer, against
  the figure just before it. Neither way may hold the file in memory.
* **upload floor**: the same bytes, raw POST, to a bare ASGI app writing them to the same
  store (the generated backend's own `SQLStore`, the same chunk table, a SQLite file in
  the same folder) with the same store calls (benchmarks/servers/upload_floor.py). The
  ratio is the generated backend's throughput over the floor's.
* **turn cost**: a text turn in a thread whose history holds 4 images, and 8, against
  one in a text-only thread: wall time of the turn, and the bytes of the request the fake
  provider received (the images go as data URLs; only the newest HISTORY_IMAGE_LIMIT=4
  are resent, so 8 should cost what 4 do).

The fake provider runs in this process for the turn cost (it records what it received).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import TEMPLATE, Service, backend_env, median, ratio, say
from benchmarks.stream_bench import QUIET, UVICORN, generated_service
from reliability.harness import load_module, parse_events

MB = 1024 * 1024
GOAL_GROWTH_MB = 16.0
GOAL_FLOOR_RATIO = 0.5
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PIECE = 1024 * 1024  # what the client hands httpx at a time
IMAGE_BYTES = 1024 * 1024  # each image in the turn-cost threads


def png(size: int, seed: int) -> bytes:
    return PNG_SIGNATURE + random.Random(seed).randbytes(size - len(PNG_SIGNATURE))


def _pieces(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), PIECE):
        yield bytes(view[start : start + PIECE])


class RssSampler:
    """The peak resident set of a process while a block runs (a 10 ms sampling thread)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.before = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self.before = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.before) / MB


def _chatkit(client: httpx.Client, op: str, **params: Any) -> httpx.Response:
    return client.post(
        "/chatkit",
        content=json.dumps({"type": op, "params": params}),
        headers={"content-type": "application/json"},
    )


def _create(client: httpx.Client, size: int, name: str = "big.png") -> dict[str, Any]:
    response = _chatkit(client, "attachments.create", name=name, size=size, mime_type="image/png")
    if response.status_code != 200:
        raise RuntimeError(f"attachments.create: HTTP {response.status_code} {response.text}")
    return dict(response.json())


def _upload_path(attachment: dict[str, Any]) -> str:
    return httpx.URL(attachment["upload_descriptor"]["url"]).path


def _timed_upload(client: httpx.Client, path: str, data: bytes, style: str) -> float:
    began = time.perf_counter()
    if style == "multipart":
        response = client.post(path, files={"file": ("big.png", data, "image/png")})
    else:
        response = client.post(
            path,
            content=_pieces(data),
            headers={"content-type": "image/png", "content-length": str(len(data))},
        )
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"upload to {path}: HTTP {response.status_code} {response.text[:300]}")
    return elapsed


def _timed_download(client: httpx.Client, attachment_id: str, expected: str) -> float:
    digest = hashlib.sha256()
    began = time.perf_counter()
    with client.stream("GET", f"/chatkit/attachments/{attachment_id}") as response:
        if response.status_code != 200:
            raise RuntimeError(f"download: HTTP {response.status_code}")
        for chunk in response.iter_raw():
            digest.update(chunk)
    elapsed = time.perf_counter() - began
    if digest.hexdigest() != expected:
        raise RuntimeError("the download differs from the upload")
    return elapsed


def large_file(generated: Service, floor: Service, size: int, repetitions: int) -> dict[str, Any]:
    data = png(size, 1)
    expected = hashlib.sha256(data).hexdigest()
    timings: dict[str, list[float]] = {"raw": [], "multipart": [], "download": [], "floor": []}
    growth: dict[str, list[float]] = {"raw": [], "multipart": [], "download": []}
    with (
        httpx.Client(base_url=generated.url, timeout=600) as client,
        httpx.Client(base_url=floor.url, timeout=600) as floor_client,
    ):
        # Warm-up: the first upload and download pay lazy imports and first connections.
        small = png(600_000, 2)
        warm = _create(client, len(small), "warm.png")
        _timed_upload(client, _upload_path(warm), small, "raw")
        _timed_download(client, warm["id"], hashlib.sha256(small).hexdigest())
        warm_floor = floor_client.post(f"/create?size={len(small)}").json()["id"]
        _timed_upload(floor_client, f"/upload/{warm_floor}", small, "raw")
        for number in range(repetitions):
            # The floor and the backend take turns going first.
            order = ["floor", "raw", "multipart"] if number % 2 else ["raw", "multipart", "floor"]
            for style in order:
                if style == "floor":
                    floor_id = floor_client.post(f"/create?size={size}").json()["id"]
                    timings["floor"].append(
                        _timed_upload(floor_client, f"/upload/{floor_id}", data, "raw")
                    )
                    continue
                attachment = _create(client, size)
                with RssSampler(generated.pid) as sampler:
                    timings[style].append(
                        _timed_upload(client, _upload_path(attachment), data, style)
                    )
                growth[style].append(sampler.growth_mb)
                with RssSampler(generated.pid) as sampler:
                    timings["download"].append(_timed_download(client, attachment["id"], expected))
                growth["download"].append(sampler.growth_mb)
                say(
                    f"attachments: {style} upload {timings[style][-1]:.2f} s "
                    f"(+{growth[style][-1]:.1f} MB), download {timings['download'][-1]:.2f} s "
                    f"(+{growth['download'][-1]:.1f} MB)"
                )
            say(f"attachments: floor upload {timings['floor'][-1]:.2f} s")
    seconds = {style: median(values) for style, values in timings.items()}
    throughput = {style: size / MB / value for style, value in seconds.items()}
    return {
        "size_mb": size / MB,
        "repetitions": repetitions,
        "timings": timings,
        "seconds": seconds,
        "mb_per_s": throughput,
        "growth_mb": growth,
        "max_growth_mb": max(max(values) for values in growth.values()),
        "floor_ratio": ratio(throughput["raw"], throughput["floor"]),
        "floor_ratio_multipart": ratio(throughput["multipart"], throughput["floor"]),
        "rss_mb": psutil.Process(generated.pid).memory_info().rss / MB,
    }


def _turn(client: httpx.Client, op: str, **params: Any) -> tuple[float, str]:
    began = time.perf_counter()
    response = _chatkit(client, op, **params)
    elapsed = time.perf_counter() - began
    events = parse_events(response.content)
    errors = [event for event in events if event.get("type") == "error"]
    if response.status_code != 200 or errors:
        raise RuntimeError(f"{op}: HTTP {response.status_code} {errors or response.text[:300]}")
    thread = next(
        (
            e["thread"]["id"]
            for e in events
            if e.get("type") in ("thread.created", "thread.updated")
        ),
        "",
    )
    return elapsed, thread


def _message(text: str, attachments: list[str]) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachments,
        "inference_options": {},
    }


def turn_cost(generated: Service, fake: Any, turns: int, image_bytes: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with httpx.Client(base_url=generated.url, timeout=120) as client:
        for label, images in (("text only", 0), ("4 images", 4), ("8 images", 8)):
            thread = ""
            for batch in range(images // 4 or 1):
                ids = []
                for n in range(4 if images else 0):
                    data = png(image_bytes, 100 * batch + n)
                    attachment = _create(client, len(data), f"photo-{batch}-{n}.png")
                    _timed_upload(client, _upload_path(attachment), data, "raw")
                    ids.append(attachment["id"])
                text = f"here are {len(ids)} photos" if ids else "hello"
                if not thread:
                    _, thread = _turn(client, "threads.create", input=_message(text, ids))
                else:
                    _turn(
                        client,
                        "threads.add_user_message",
                        thread_id=thread,
                        input=_message(text, ids),
                    )
            seconds, request_bytes, image_parts = [], [], []
            for number in range(turns):
                elapsed, _ = _turn(
                    client,
                    "threads.add_user_message",
                    thread_id=thread,
                    input=_message(f"and now? ({number})", []),
                )
                record = [r for r in fake.requests if r.number][-1]  # the model call
                seconds.append(elapsed)
                length = record.headers.get("content-length")
                request_bytes.append(int(length) if length else len(json.dumps(record.body)))
                image_parts.append(len(record.images()))
                fake.reset()  # the recorded requests hold the images: keep memory flat
            results[label] = {
                "images_in_history": images,
                "seconds": median(seconds),
                "request_bytes": median(request_bytes),
                "images_sent": max(image_parts),
                "runs": seconds,
            }
            say(
                f"attachments: turn with {label}: {results[label]['seconds'] * 1000:.0f} ms, "
                f"{results[label]['request_bytes'] / 1000:.0f} kB to the provider"
            )
    text = results["text only"]
    for label in ("4 images", "8 images"):
        results[label]["time_ratio"] = ratio(results[label]["seconds"], text["seconds"])
        results[label]["bytes_ratio"] = ratio(
            results[label]["request_bytes"], text["request_bytes"]
        )
    return results


def run(backend: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    size, repetitions, turns = (2 * MB, 1, 1) if quick else (50 * MB, 3, 5)
    image_bytes = 200_000 if quick else IMAGE_BYTES
    fake_module = load_module("bench_attachments_fake", backend / "tests" / "fake_provider.py")
    fake = fake_module.FakeProvider(delay_seconds=0.0).start()
    try:
        generated = generated_service(
            backend,
            fake.base_url,
            f"sqlite+aiosqlite:///{scratch / 'attachments.db'}",
            name="generated-attachments",
            ATTACHMENT_MAX_BYTES=str(size + MB),
        )
        floor = Service(
            "upload-floor",
            [*UVICORN, *QUIET, "benchmarks.servers.upload_floor:app"],
            cwd=backend,
            env={
                **backend_env(fake.base_url, f"sqlite+aiosqlite:///{scratch / 'floor.db'}"),
                "PYTHONPATH": str(TEMPLATE),
            },
        )
        with generated, floor:
            generated.launch(scratch)
            floor.launch(scratch)
            generated.wait_ready()
            floor.wait_ready()
            results = {"large": large_file(generated, floor, size, repetitions)}
            results["turns"] = turn_cost(generated, fake, turns, image_bytes)
    finally:
        fake.stop()
    results["goal_growth_mb"] = GOAL_GROWTH_MB
    results["goal_floor_ratio"] = GOAL_FLOOR_RATIO
    results["image_bytes"] = image_bytes
    return results


def main() -> None:
    """`python -m benchmarks.attachments_bench BACKEND_DIR [--quick]`: one run's figures."""
    import sys
    import tempfile

    backend = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="attachments-bench-") as tmp:
        data = run(backend, Path(tmp), quick="--quick" in sys.argv)
    print(json.dumps(data, indent=1, default=str))


if __name__ == "__main__":
    main()
