"""The load driver, run in a process of its own: `python -m benchmarks.load ...`.

N conversations (at most C at once) of T turns each against one server, over real HTTP
with an async httpx client. Prints one JSON object: wall seconds, turns, failures and, per turn,
the time to the first text delta (TTFT) and to the end of the stream.

Protocols:
* `chatkit`: `threads.create`, then `threads.add_user_message` on that thread, each
  conversation with its own cookie (its own user), as the widget does;
* `relay`: `POST /relay {"message": ...}`, T times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

# The ChatKit protocol (request bodies, the event stream) as the reliability suite speaks it;
# only the timing loop is this driver's own.
from reliability.harness import parse_events, user_input

# What marks the first text delta, and a finished turn, in each protocol's stream.
FIRST_TOKEN = {
    "chatkit": b'"assistant_message.content_part.text_delta"',
    "relay": b"response.output_text.delta",
}
# chatkit: the user message's thread.item.done, then the reply's.
FINISHED = {"chatkit": (b'"type":"thread.item.done"', 2), "relay": (b"response.completed", 1)}
ERROR = {"chatkit": b'"type":"error"', "relay": b'"type":"error"'}


@dataclass
class Results:
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def one_turn(
    http: httpx.AsyncClient, protocol: str, path: str, payload: dict[str, Any], results: Results
) -> bytes:
    started = time.perf_counter()
    first: float | None = None
    body = b""
    async with http.stream(
        "POST", path, content=json.dumps(payload), headers={"content-type": "application/json"}
    ) as response:
        async for chunk in response.aiter_raw():
            body += chunk
            if first is None and FIRST_TOKEN[protocol] in body:
                first = time.perf_counter() - started
        status = response.status_code
    elapsed = time.perf_counter() - started
    marker, count = FINISHED[protocol]
    if status != 200 or ERROR[protocol] in body or body.count(marker) < count:
        results.failures.append(f"HTTP {status}: {body[-300:]!r}")
        return body
    results.ttft.append(first if first is not None else elapsed)
    results.total.append(elapsed)
    return body


def thread_id_of(body: bytes) -> str:
    for event in parse_events(body):
        if event.get("type") == "thread.created":
            return str(event["thread"]["id"])
    raise ValueError(f"no thread.created event in {body[:300]!r}")


async def conversation(
    http: httpx.AsyncClient, protocol: str, number: int, turns: int, results: Results
) -> None:
    if protocol == "relay":
        for turn in range(turns):
            payload = {"message": f"Conversation {number}, message {turn + 1}"}
            await one_turn(http, protocol, "/relay", payload, results)
        return
    text = f"Conversation {number}, message 1"
    payload: dict[str, Any] = {"type": "threads.create", "params": {"input": user_input(text)}}
    body = await one_turn(http, protocol, "/chatkit", payload, results)
    thread_id = thread_id_of(body)
    for turn in range(1, turns):
        params = {
            "thread_id": thread_id,
            "input": user_input(f"Conversation {number}, message {turn + 1}"),
        }
        payload = {"type": "threads.add_user_message", "params": params}
        await one_turn(http, protocol, "/chatkit", payload, results)


async def drive(
    url: str, protocol: str, conversations: int, turns: int, concurrency: int | None = None
) -> dict[str, Any]:
    results = Results()
    slots = asyncio.Semaphore(concurrency or conversations)
    # One client per conversation: its own cookie jar (its own user) and its own one
    # connection, as a browser tab has. (A pool shared by hundreds of connections costs
    # the driver CPU that grows with their number.) The clients share one SSL context and
    # are made before the clock starts: they are driver work, not server work.
    ssl_context = ssl.create_default_context()

    def client() -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(verify=ssl_context)
        return httpx.AsyncClient(base_url=url, timeout=120, transport=transport)

    async def limited(number: int, http: httpx.AsyncClient) -> None:
        async with slots:
            await conversation(http, protocol, number, turns, results)

    clients = [client() for _ in range(conversations)]
    # The first request imports the driver's async backend: keep that off the clock.
    (await clients[0].get("/health")).raise_for_status()
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(limited(n, http) for n, http in enumerate(clients)), return_exceptions=True
    )
    wall = time.perf_counter() - started
    for http in clients:
        await http.aclose()
    results.failures += [repr(o) for o in outcomes if isinstance(o, BaseException)]
    return {
        "wall_seconds": wall,
        "turns": len(results.total),
        "failures": len(results.failures),
        "first_failures": results.failures[:3],
        "ttft": results.ttft,
        "total": results.total,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--protocol", choices=sorted(FIRST_TOKEN), required=True)
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="conversations at once (default: all)"
    )
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(
        drive(args.url, args.protocol, args.conversations, args.turns, args.concurrency)
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
