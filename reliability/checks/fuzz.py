"""1. Malformed input: thousands of generated bad and edge-case requests to POST /chatkit.

Hypothesis generates the requests from the ChatKit request shapes, then breaks them:
wrong types, missing and unknown fields, unknown ops, truncated JSON, invalid UTF-8,
lone surrogates and NULs, huge strings (under and over MAX_REQUEST_BYTES), deep nesting,
non-object bodies, random bytes, absurd numbers, and the ids of another user's threads
and items. Expected: no 5xx, the worker alive, /health green, the other user's data
neither read nor changed.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from reliability.harness import Browser, Project, user_id_of, user_input
from reliability.suite import Row, Suite

CHECK = "1. Malformed input (fuzzed POST /chatkit)"
WORKERS = 3
OWN_THREADS = 6
MARKER = "__reliability_marker__"
T = TypeVar("T")

OPS = (
    "threads.get_by_id",
    "threads.create",
    "threads.list",
    "threads.add_user_message",
    "threads.add_client_tool_output",
    "threads.add_structured_input",
    "threads.custom_action",
    "threads.sync_custom_action",
    "threads.retry_after_item",
    "items.feedback",
    "attachments.create",
    "attachments.delete",
    "input.transcribe",
    "items.list",
    "threads.update",
    "threads.delete",
)
NEAR_MISS_OPS = (
    "threads.explode",
    "Threads.List",
    "threads.list ",
    "threads",
    "items.delete",
    "threads.add_user_message.x",
    "attachments.upload",
    "",
    "threads.get_by_id\u0000",
    "__proto__",
)
WEIRD_IDS = (
    "",
    " ",
    "thr_",
    "msg_",
    "../../etc/passwd",
    "' OR '1'='1",
    "thr_1; DROP TABLE chatkit_threads; --",
    "%00",
    "thr_\u0000",
    "\u0000",
    "thr_\U0001f4a5",
    "thr_\u202e",
    "null",
    "thr_" + "a" * 5000,
)
INVALID_UTF8 = (
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
    b"\xfe\xff",
)
ESCAPES = ("\\u0000", "\\ud800", "\\udfff", "\\ud83d", "\\ude00x", "\\u0000\\u0000")
CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "",
)
# Bytes; MAX_REQUEST_BYTES is 1,000,000 by default.
HUGE_SIZES = (70_000, 400_000, 990_000, 1_100_000, 3_000_000)
DEPTHS = (50, 150, 199, 200, 255, 256, 1_000, 10_000, 100_000)
NUMBERS = (
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "1.0",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 400,
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    "0x10",
    "1_000",
)


@dataclass(frozen=True)
class Case:
    category: str
    body: bytes
    content_type: str = "application/json"
    # Huge bodies are built when sent: the body is split at MARKER, which becomes
    # `filler` repeated `repeat` times (keeps thousands of cases out of memory).
    filler: bytes = b""
    repeat: int = 0

    def materialize(self) -> bytes:
        if not self.repeat:
            return self.body
        head, _, tail = self.body.partition(MARKER.encode())
        return head + self.filler * self.repeat + tail


@dataclass
class Targets:
    own_threads: list[str]
    own_items: list[str]
    victim_threads: list[str]
    victim_items: list[str]


# --- strategies ----------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
TEXTS = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "hello",
            "\u202eevil\u202c",
            "<script>alert(1)</script>",
            "{{ cookiecutter.project_slug }}",
            "a\u0000b",
            "\U0001f600" * 50,
            "Robert'); DROP TABLE chatkit_items;--",
            "\r\n\r\nHTTP/1.1 200 OK",
        ]
    ),
)
LIMITS = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=120),
    st.sampled_from([0, 2**31, 2**53, 2**63 - 1, 2**63, 2**64, -(2**63)]),
    st.integers(min_value=-(2**80), max_value=2**80),
)
ORDERS = st.sampled_from(["asc", "desc", "ASC", "sideways", ""])


def _ids(pool: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(pool) if pool else st.just("thr_missing")


def _id_strategy(targets: Targets, kind: str, victim_only: bool) -> st.SearchStrategy[str]:
    victim = targets.victim_threads if kind == "thread" else targets.victim_items
    if victim_only:
        return _ids(victim)
    own = targets.own_threads if kind == "thread" else targets.own_items
    return st.one_of(_ids(own), _ids(victim), st.sampled_from(WEIRD_IDS), st.text(max_size=40))


def _user_inputs() -> st.SearchStrategy[dict[str, Any]]:
    text_part = st.builds(lambda t: {"type": "input_text", "text": t}, TEXTS)
    tag_part = st.builds(
        lambda i, t, d, x: {"type": "input_tag", "id": i, "text": t, "data": d, "interactive": x},
        st.text(max_size=10),
        st.text(max_size=20),
        st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
        st.booleans(),
    )
    return st.fixed_dictionaries(
        {
            "content": st.lists(st.one_of(text_part, text_part, tag_part), min_size=0, max_size=3),
            "attachments": st.one_of(st.just([]), st.lists(st.text(max_size=12), max_size=2)),
            "inference_options": st.one_of(
                st.just({}),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "model": st.text(max_size=20),
                        "tool_choice": st.fixed_dictionaries({"id": st.text(max_size=10)}),
                    },
                ),
            ),
        },
        optional={"quoted_text": TEXTS},
    )


def _params(op: str, targets: Targets, victim_only: bool) -> st.SearchStrategy[dict[str, Any]]:
    thread = _id_strategy(targets, "thread", victim_only)
    item = _id_strategy(targets, "item", victim_only)
    optional_item = st.one_of(st.none(), item)
    match op:
        case "threads.get_by_id" | "threads.delete":
            return st.fixed_dictionaries({"thread_id": thread})
        case "threads.create":
            return st.fixed_dictionaries({"input": _user_inputs()})
        case "threads.list":
            return st.fixed_dictionaries(
                {}, optional={"limit": LIMITS, "order": ORDERS, "after": thread}
            )
        case "threads.add_user_message":
            return st.fixed_dictionaries({"thread_id": thread, "input": _user_inputs()})
        case "threads.add_client_tool_output":
            return st.fixed_dictionaries({"thread_id": thread, "result": JSON_VALUES})
        case "threads.add_structured_input":
            answer = st.fixed_dictionaries(
                {"values": st.lists(st.text(max_size=10), max_size=3), "skipped": st.booleans()}
            )
            return st.fixed_dictionaries(
                {
                    "thread_id": thread,
                    "item_id": item,
                    "input": st.fixed_dictionaries(
                        {
                            "status": st.sampled_from(["answered", "skipped", "other"]),
                            "answers": st.dictionaries(st.text(max_size=6), answer, max_size=2),
                        }
                    ),
                }
            )
        case "threads.custom_action" | "threads.sync_custom_action":
            action = st.fixed_dictionaries(
                {"type": st.text(max_size=20), "payload": JSON_VALUES},
                optional={"handler": st.sampled_from(["client", "server", "x"])},
            )
            return st.fixed_dictionaries(
                {"thread_id": thread, "action": action}, optional={"item_id": optional_item}
            )
        case "threads.retry_after_item":
            return st.fixed_dictionaries({"thread_id": thread, "item_id": item})
        case "items.feedback":
            return st.fixed_dictionaries(
                {
                    "thread_id": thread,
                    "item_ids": st.lists(item, max_size=4),
                    "kind": st.sampled_from(["positive", "negative", "meh"]),
                }
            )
        case "attachments.create":
            return st.fixed_dictionaries(
                {
                    "name": TEXTS,
                    "size": st.integers(min_value=-(2**64), max_value=2**64),
                    "mime_type": st.sampled_from(["text/plain", "image/png", "x/../y", ""]),
                }
            )
        case "attachments.delete":
            return st.fixed_dictionaries({"attachment_id": item})
        case "input.transcribe":
            return st.fixed_dictionaries(
                {
                    "audio_base64": st.one_of(st.just("aGVsbG8="), st.text(max_size=30)),
                    "mime_type": st.sampled_from(["audio/webm", "audio/webm;codecs=opus", ""]),
                }
            )
        case "items.list":
            return st.fixed_dictionaries(
                {"thread_id": thread},
                optional={"limit": LIMITS, "order": ORDERS, "after": item},
            )
        case "threads.update":
            return st.fixed_dictionaries({"thread_id": thread, "title": TEXTS})
    raise ValueError(op)


def _requests(targets: Targets, victim_only: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(OPS).flatmap(
        lambda op: st.fixed_dictionaries(
            {"type": st.just(op), "params": _params(op, targets, victim_only)},
            optional={"metadata": st.dictionaries(st.text(max_size=6), SCALARS, max_size=3)},
        )
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root excluded)."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*prefix, index))
            found.extend(_paths(child, (*prefix, index)))
    return found


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


def _delete(document: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        document = document[step]
    del document[path[-1]]


CATEGORIES = (
    "well-formed",
    "other user's ids",
    "wrong types",
    "missing or unknown fields",
    "unknown op",
    "truncated JSON",
    "invalid UTF-8",
    "lone surrogates and NULs",
    "huge strings",
    "deep nesting",
    "not an object",
    "random bytes",
    "absurd numbers",
    "duplicate keys",
)


@st.composite
def cases(draw: st.DrawFn, targets: Targets, category: str) -> Case:
    content_type = "application/json"
    request = draw(_requests(targets))
    if category == "well-formed":
        body = _dumps(request)
    elif category == "other user's ids":
        body = _dumps(draw(_requests(targets, victim_only=True)))
    elif category == "wrong types":
        paths = _paths(request)
        for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
            try:
                _set(request, path, draw(WRONG_TYPES))
            except (KeyError, IndexError, TypeError):
                pass  # an earlier replacement removed this path
        body = _dumps(request)
    elif category == "missing or unknown fields":
        paths = _paths(request)
        if draw(st.booleans()) and paths:
            path = draw(st.sampled_from(paths))
            try:
                _delete(request, path)
            except (KeyError, IndexError, TypeError):
                pass
        else:
            request[draw(st.text(min_size=1, max_size=12))] = draw(JSON_VALUES)
            if isinstance(request.get("params"), dict):
                request["params"][draw(st.text(min_size=1, max_size=12))] = draw(JSON_VALUES)
        body = _dumps(request)
    elif category == "unknown op":
        request["type"] = draw(st.one_of(st.sampled_from(NEAR_MISS_OPS), st.text(max_size=30)))
        body = _dumps(request)
    elif category == "truncated JSON":
        full = _dumps(request)
        body = full[: draw(st.integers(min_value=0, max_value=max(0, len(full) - 1)))]
    elif category == "invalid UTF-8":
        full = _dumps(request)
        at = draw(st.integers(min_value=0, max_value=len(full)))
        body = full[:at] + draw(st.sampled_from(INVALID_UTF8)) + full[at:]
        if draw(st.booleans()):
            body = json.dumps(request, ensure_ascii=False).encode("utf-16")
    elif category == "lone surrogates and NULs":
        escape = draw(st.sampled_from(ESCAPES))
        text = json.dumps(user_input(MARKER))
        choices = [
            f'{{"type":"threads.create","params":{{"input":{text}}}}}',
            f'{{"type":"threads.update","params":{{"thread_id":"{MARKER}","title":"x"}}}}',
            f'{{"type":"threads.get_by_id","params":{{"thread_id":"{MARKER}"}}}}',
            f'{{"type":"items.list","params":{{"thread_id":"{MARKER}"}}}}',
        ]
        for thread_id in targets.own_threads[:1]:
            choices += [
                f'{{"type":"threads.update","params":{{"thread_id":"{thread_id}",'
                f'"title":"a{MARKER}b"}}}}',
                f'{{"type":"threads.add_user_message","params":{{"thread_id":"{thread_id}",'
                f'"input":{text}}}}}',
                f'{{"type":"items.list","params":{{"thread_id":"{thread_id}",'
                f'"after":"{MARKER}"}}}}',
            ]
        template = draw(st.sampled_from(choices))
        body = template.replace(MARKER, escape).encode()
    elif category == "huge strings":
        size = draw(st.sampled_from(HUGE_SIZES))
        filler = draw(st.sampled_from(["x", "\u00e9", "\U0001f600", " "]))
        huge = MARKER
        where = draw(st.sampled_from(["title", "message", "thread_id", "metadata", "op"]))
        thread_id = targets.own_threads[0] if targets.own_threads else "thr_missing"
        document: dict[str, Any] = {
            "title": {"type": "threads.update", "params": {"thread_id": thread_id, "title": huge}},
            "message": {"type": "threads.create", "params": {"input": user_input(huge)}},
            "thread_id": {"type": "threads.get_by_id", "params": {"thread_id": huge}},
            "metadata": {"type": "threads.list", "params": {}, "metadata": {"x": huge}},
            "op": {"type": huge, "params": {}},
        }[where]
        raw = json.dumps(document, ensure_ascii=False).encode()
        return Case(category, raw, filler=filler.encode(), repeat=size // len(filler.encode()))
    elif category == "deep nesting":
        depth = draw(st.sampled_from(DEPTHS))
        kind = draw(st.sampled_from(["list", "object", "mixed"]))
        if kind == "list":
            nested = "[" * depth + "]" * depth
        elif kind == "object":
            nested = '{"a":' * depth + "1" + "}" * depth
        else:
            nested = '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)
        where = draw(st.sampled_from(["metadata", "result", "payload", "limit", "content"]))
        thread_id = targets.own_threads[0] if targets.own_threads else "thr_missing"
        shell = {
            "metadata": '{"type":"threads.list","params":{},"metadata":{"x":MARK}}',
            "result": '{"type":"threads.add_client_tool_output","params":'
            f'{{"thread_id":"{thread_id}","result":MARK}}}}',
            "payload": '{"type":"threads.sync_custom_action","params":'
            f'{{"thread_id":"{thread_id}","action":{{"type":"a","payload":MARK}}}}}}',
            "limit": '{"type":"threads.list","params":{"limit":MARK}}',
            "content": '{"type":"threads.create","params":{"input":{"content":MARK,'
            '"attachments":[],"inference_options":{}}}}',
        }[where]
        body = shell.replace("MARK", nested).encode()
    elif category == "not an object":
        value = draw(st.one_of(JSON_VALUES, st.just({}), st.lists(st.just(request), max_size=2)))
        body = _dumps([value] if isinstance(value, dict) and value else value)
    elif category == "random bytes":
        body = draw(st.binary(max_size=2000))
    elif category == "absurd numbers":
        number = draw(st.sampled_from(NUMBERS))
        where = draw(st.sampled_from(["threads", "items", "size"]))
        thread_id = targets.own_threads[0] if targets.own_threads else "thr_missing"
        body = {
            "threads": f'{{"type":"threads.list","params":{{"limit":{number}}}}}',
            "items": f'{{"type":"items.list","params":{{"thread_id":"{thread_id}",'
            f'"limit":{number}}}}}',
            "size": '{"type":"attachments.create","params":{"name":"a","mime_type":"text/plain",'
            f'"size":{number}}}}}',
        }[where].encode()
    else:  # duplicate keys: which one wins must not matter for safety
        other = draw(_requests(targets, victim_only=draw(st.booleans())))
        first, second = (request, other) if draw(st.booleans()) else (other, request)
        body = (
            b'{"type":'
            + _dumps(first["type"])
            + b',"params":'
            + _dumps(first["params"])
            + b',"type":'
            + _dumps(second["type"])
            + b',"params":'
            + _dumps(second["params"])
            + b"}"
        )
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        content_type = draw(st.sampled_from(CONTENT_TYPES))
    return Case(category=category, body=body, content_type=content_type)


def generate(targets: Targets, count: int, seed_value: int) -> list[Case]:
    """`count` cases from hypothesis, an equal share per category, shuffled."""
    return collect(lambda category: cases(targets, category), CATEGORIES, count, seed_value)


def _keeper(found: list[T]) -> Callable[[T], None]:
    def keep(case: T) -> None:
        found.append(case)

    return keep


def collect(
    strategy_for: Callable[[str], st.SearchStrategy[T]],
    categories: Sequence[str],
    count: int,
    seed_value: int,
) -> list[T]:
    """`count` examples from hypothesis, an equal share per category, shuffled.

    Generation only: nothing fails and nothing shrinks; the server's answers are
    counted afterwards. (Hypothesis may repeat a small case; each one is still sent.)
    """
    collected: list[T] = []
    for index, category in enumerate(categories):
        share = count * (index + 1) // len(categories) - count * index // len(categories)
        found: list[T] = []
        for attempt in range(5):
            if len(found) >= share:
                break
            run_hypothesis = settings(
                max_examples=share - len(found),
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(
                seed(seed_value + 1000 * index + attempt)(
                    given(case=strategy_for(category))(_keeper(found))
                )
            )
            run_hypothesis()
        collected.extend(found[:share])
    random.Random(seed_value).shuffle(collected)
    return collected


# --- what every fuzz check measures afterwards ------------------------------------------


@dataclass
class Tally:
    """The answers to a fuzz run, counted from its worker threads (``record`` locks)."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_category: dict[str, Counter[int]] = field(default_factory=dict)
    transport_errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # a few 5xx, for the report
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, category: str, status: int, body: str | bytes) -> None:
        """One answer; status 0 is a dropped connection (``dropped`` names its error)."""
        with self.lock:
            self.statuses[status] += 1
            self.by_category.setdefault(category, Counter())[status] += 1
            if status >= 500:
                self.samples.append(f"HTTP {status} for {body[:300]!r}")

    def dropped(self, error: Exception) -> None:
        with self.lock:
            self.transport_errors[type(error).__name__] += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def accepted_in(self, *categories: str) -> int:
        return sum(
            n
            for category in categories
            for status, n in self.by_category.get(category, Counter()).items()
            if 200 <= status < 300
        )

    def details(self) -> dict[str, Any]:
        return {
            category: dict(sorted(counts.items()))
            for category, counts in sorted(self.by_category.items())
        }


@dataclass(frozen=True)
class Aftermath:
    """How the backend came out of a fuzz run: what every fuzz check fails on."""

    tally: Tally
    wanted: int  # requests the run meant to send
    alive: bool  # the same uvicorn worker, still running
    health: int
    crashes: int  # unhandled exceptions in the backend's log

    @classmethod
    def of(cls, tally: Tally, wanted: int, backend: Any, pid: int, log_start: int) -> Aftermath:
        alive = backend.alive() and (backend.process.pid if backend.process else 0) == pid
        crashes = backend.log_text()[log_start:].count("Exception in ASGI application")
        return cls(tally, wanted, alive, backend.health(), crashes)

    def failures(self) -> list[str]:
        tally, found = self.tally, []
        if tally.total < self.wanted:
            found.append(f"only {tally.total} requests were generated, not {self.wanted}")
        if tally.server_errors:
            worst = [
                f"{category}: {dict(counts)}"
                for category, counts in tally.by_category.items()
                if any(status >= 500 for status in counts)
            ]
            found.append(
                f"{tally.server_errors} responses were 5xx ({'; '.join(worst)}); e.g. "
                + " | ".join(tally.samples[:5])
            )
        if tally.transport_errors:
            found.append(f"connections failed: {dict(tally.transport_errors)}")
        if not self.alive:
            found.append("the uvicorn worker died")
        if self.crashes:
            found.append(f"{self.crashes} unhandled exceptions in the ASGI app (uvicorn log)")
        if self.health != 200:
            found.append(f"/health answered {self.health} afterwards")
        return found

    def figures(self) -> list[str]:
        tally = self.tally
        status_text = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
        return [
            f"by status: {status_text}",
            f"5xx: {tally.server_errors}; transport errors: {sum(tally.transport_errors.values())}"
            f"; unhandled exceptions in the log: {self.crashes}",
            f"worker alive: {'yes' if self.alive else 'NO'} (same pid), /health after: "
            f"{self.health}",
        ]

    def metrics(self) -> dict[str, int]:
        tally = self.tally
        return {
            "requests": tally.total,
            "5xx": tally.server_errors,
            "transport errors": sum(tally.transport_errors.values()),
            "unhandled exceptions": self.crashes,
            "worker alive": int(self.alive),
            "health": self.health,
        }


def broken_threads(browser: Browser) -> tuple[list[str], list[str]]:
    """The browser's threads, and those that no longer answer a normal message."""
    surviving = [t["id"] for t in browser.threads()]
    broken = []
    for thread_id in surviving:
        turn = browser.send(thread_id, "a normal message after the fuzz")
        if turn.status != 200 or turn.errors or not turn.reply_text:
            broken.append(f"{thread_id}: HTTP {turn.status} {turn.errors}")
    return surviving, broken


# --- the check -----------------------------------------------------------------------


def _victim_state(browser: Browser, thread_ids: list[str]) -> str:
    state = {"threads": browser.threads(), "items": {t: browser.items(t) for t in thread_ids}}
    return json.dumps(state, sort_keys=True)


def run_project(suite: Suite, project: Project, index: int) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    fake = suite.fake
    fake.reset()
    fake.reply = "ok"
    fake.chunk_size = 4096
    backend = suite.running(project, "main")
    database = backend.database
    pid = backend.process.pid if backend.process else 0
    log_start = len(backend.log_text())
    with suite.browser(backend) as victim, suite.browser(backend) as fuzzer:
        secret = f"victim-secret-{random.Random(suite.seed).getrandbits(64):x}"
        victim_threads, victim_items = [], []
        for n in range(2):
            turn = victim.create_thread(f"{secret} thread {n}")
            victim_threads.append(turn.thread_id)
            victim_items += [item["id"] for item in turn.items_done]
        own_threads, own_items = [], []
        for n in range(OWN_THREADS):  # several: the fuzz deletes some of them
            own = fuzzer.create_thread(f"fuzzer's own thread {n}")
            own_threads.append(own.thread_id)
            own_items += [item["id"] for item in own.items_done]
        fuzzer_cookie = fuzzer.cookie
        before = _victim_state(victim, victim_threads)
        victim_rows = database.user_rows(user_id_of(victim.cookie) or "")

        targets = Targets(own_threads, own_items, victim_threads, victim_items)
        generated = generate(targets, suite.sizes.fuzz_requests, suite.seed + 7919 * index)
        tally = Tally()
        leaks: list[str] = []
        victim_markers = [secret.encode(), *(i.encode() for i in victim_items)]

        def send(chunk: list[Case]) -> None:
            with suite.browser(backend) as client:
                client.set_session(fuzzer_cookie or "")
                for case in chunk:
                    headers = {"content-type": case.content_type} if case.content_type else {}
                    try:
                        reply = client.post(case.materialize(), headers=headers)
                    except Exception as error:  # a dropped connection is a finding too
                        tally.dropped(error)
                        tally.record(case.category, 0, case.body)
                        continue
                    tally.record(case.category, reply.status, case.body)
                    if 200 <= reply.status < 300 and any(m in reply.body for m in victim_markers):
                        with tally.lock:
                            leaks.append(f"{case.category}: {case.body[:160]!r}")

        chunks = [generated[i::WORKERS] for i in range(WORKERS)]
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(send, chunks))

        aftermath = Aftermath.of(tally, suite.sizes.fuzz_requests, backend, pid, log_start)
        after = _victim_state(victim, victim_threads)
        rows_after = database.user_rows(user_id_of(victim.cookie) or "")
        # Whatever the fuzz stored in the fuzzer's threads (tags, odd text, NULs...),
        # each surviving thread must still hold a normal conversation.
        fake.reply = None
        surviving, broken = broken_threads(fuzzer)
    changed = before != after or victim_rows != rows_after

    failures += aftermath.failures()
    if leaks:
        failures.append(f"{len(leaks)} responses carried the other user's data: {leaks[:3]}")
    if changed:
        failures.append("the other user's threads or items changed")
    if broken:
        failures.append(f"{len(broken)} of the fuzzer's threads no longer work: {broken[:3]}")

    figures = [
        f"{tally.total} generated requests in {len(tally.by_category)} categories",
        *aftermath.figures(),
        f"other user's data read: {len(leaks)}, changed: {'YES' if changed else 0}",
        f"the fuzzer's {len(surviving)} surviving threads still answer a normal message: "
        f"{len(surviving) - len(broken)}/{len(surviving)}",
    ]
    metrics = aftermath.metrics() | {
        "reads": len(leaks),
        "changed": int(changed),
        "broken threads": len(broken),
    }
    seconds = time.monotonic() - started
    return Row(CHECK, project.label, figures, failures, seconds, tally.details(), metrics)


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project, n) for n, project in enumerate(suite.projects)]
