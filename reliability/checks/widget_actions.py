"""17. Widget actions and client tool outputs, fuzzed.

Both users' threads hold time cards (the widget the server tool ``current_time`` streams)
and a client tool call waiting for its output (``get_browser_time_zone``), made through
the fake provider's ``/tool NAME {json}`` convention. Hypothesis then generates
``threads.custom_action`` and ``threads.sync_custom_action`` requests (known and unknown
action types, any handler, payloads of any JSON, good and bad zones; on widget items,
other items, missing and made-up ids, the fuzzer's own and the other user's) and
``threads.add_client_tool_output`` requests with any JSON as the result (into threads
with a call waiting, one made just before for a share of them, without one, and the other
user's). Expected: no 5xx, the worker alive, /health green; every request naming the
other user's thread or item refused, her threads, items and rows the same before and
after, her card still refreshing and her call still answerable; the fuzzer's threads
still hold a normal conversation and its cards still refresh.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from reliability.checks.fuzz import (
    JSON_VALUES,
    WEIRD_IDS,
    WRONG_TYPES,
    Aftermath,
    Tally,
    _paths,
    _set,
    broken_threads,
    collect,
)
from reliability.harness import Browser, Project, Turn, user_id_of
from reliability.suite import Row, Suite

CHECK = "17. Widget actions and client tool outputs"
WORKERS = 3
CARD_THREADS = 2  # per user
CARD = '/tool current_time {"timezone": "UTC"}'
CALL = "/tool get_browser_time_zone {}"
ACTION_OPS = ("threads.custom_action", "threads.sync_custom_action")
OUTPUT_OP = "threads.add_client_tool_output"
ZONES = (
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
    "Etc/GMT+12",
    "utc",
    "",
    " ",
    "Mars/Olympus_Mons",
    "../../../etc/passwd",
    "/etc/localtime",
    "UTC\u0000",
    "Europe/Paris ",
    "\U0001f4a5",
    "A" * 64,
    "A" * 5000,
)
ACTION_TYPES = st.one_of(
    st.just("time.refresh"),
    st.just("time.refresh"),
    st.sampled_from(["time.copy", "time.Refresh", "time.refresh ", "time", "", "__proto__"]),
    st.text(max_size=30),
)
PAYLOADS = st.one_of(
    st.fixed_dictionaries({"timezone": st.sampled_from(ZONES)}),
    st.fixed_dictionaries({"timezone": st.sampled_from(ZONES)}, optional={"x": JSON_VALUES}),
    st.fixed_dictionaries({"timezone": WRONG_TYPES}),
    st.fixed_dictionaries({"text": st.text(max_size=40)}),  # time.copy's, sent to the server
    JSON_VALUES,
)
RESULTS = st.one_of(
    st.fixed_dictionaries({"time_zone": st.sampled_from(ZONES)}),
    st.fixed_dictionaries({"time_zone": WRONG_TYPES}),
    JSON_VALUES,
    st.sampled_from(["", "x" * 50_000, "\u0000", "[A widget was shown]", "ÿ" * 1000]),
    st.recursive(st.just([]), lambda inner: st.lists(inner, max_size=2), max_leaves=40),
)
CATEGORIES = (
    "action on own card",
    "action on own other items",
    "action on the other user's",
    "action, wrong shapes",
    "output, call just made",
    "output, any own thread",
    "output into the other user's",
)
CROSS_USER = ("action on the other user's", "output into the other user's")


@dataclass
class Side:
    """One user's threads and items, by what they are."""

    card_threads: list[str]
    cards: list[str]  # widget item ids, in the order of card_threads
    call_thread: str  # its last item is a pending client tool call
    calls: list[str]  # client tool call item ids
    others: list[str]  # user and assistant messages

    @property
    def threads(self) -> list[str]:
        return [*self.card_threads, self.call_thread]

    @property
    def items(self) -> list[str]:
        return [*self.cards, *self.calls, *self.others]


@dataclass(frozen=True)
class Case:
    category: str
    request: dict[str, Any]
    fresh_call: bool = False  # the worker asks for a client tool call in its thread first

    def body(self, call_thread: str) -> bytes:
        if not self.fresh_call:
            return json.dumps(self.request).encode()
        request = {**self.request, "params": {**self.request["params"], "thread_id": call_thread}}
        return json.dumps(request).encode()


HANDLERS = st.sampled_from(["server", "client", "x", ""])
FUZZED_ACTIONS = st.fixed_dictionaries(
    {"type": ACTION_TYPES, "payload": PAYLOADS}, optional={"handler": HANDLERS}
)
# What the card's Refresh button sends: the type and payload checks pass, so the request
# reaches the checks of the thread and the item.
REFRESHES = st.fixed_dictionaries(
    {
        "type": st.just("time.refresh"),
        "payload": st.fixed_dictionaries({"timezone": st.sampled_from(ZONES[:5])}),
    },
    optional={"handler": HANDLERS},
)
ACTIONS = st.one_of(REFRESHES, REFRESHES, FUZZED_ACTIONS)


def _action_request(thread: str, item: str | None, action: dict[str, Any], op: str) -> Any:
    params: dict[str, Any] = {"thread_id": thread, "action": action}
    if item is not None:
        params["item_id"] = item
    return {"type": op, "params": params}


@st.composite
def cases(draw: st.DrawFn, own: Side, victim: Side, category: str) -> Case:
    op = draw(st.sampled_from(ACTION_OPS))
    action = draw(ACTIONS)
    if category == "action on own card":
        at = draw(st.integers(min_value=0, max_value=len(own.cards) - 1))
        return Case(category, _action_request(own.card_threads[at], own.cards[at], action, op))
    if category == "action on own other items":
        thread = draw(st.sampled_from(own.threads))
        item = draw(
            st.one_of(
                st.none(),
                st.sampled_from(own.others + own.calls),
                st.sampled_from(own.cards),  # a card of another of its threads
                st.sampled_from(WEIRD_IDS),
                st.text(max_size=40),
            )
        )
        return Case(category, _action_request(thread, item, action, op))
    if category == "action on the other user's":
        which = draw(st.sampled_from(["her thread, her item", "own thread", "her thread"]))
        if which == "her thread, her item":
            at = draw(st.integers(min_value=0, max_value=len(victim.cards) - 1))
            thread, item = (
                victim.card_threads[at],
                draw(st.sampled_from([victim.cards[at], *victim.items])),
            )
        elif which == "own thread":  # her item named through the fuzzer's own thread
            thread, item = draw(st.sampled_from(own.threads)), draw(st.sampled_from(victim.items))
        else:  # her thread with the fuzzer's own card, or none
            thread = draw(st.sampled_from(victim.threads))
            item = draw(st.one_of(st.none(), st.sampled_from(own.cards)))
        return Case(category, _action_request(thread, item, action, op))
    if category == "action, wrong shapes":
        at = draw(st.integers(min_value=0, max_value=len(own.cards) - 1))
        request = _action_request(own.card_threads[at], own.cards[at], action, op)
        for path in draw(st.lists(st.sampled_from(_paths(request)), min_size=1, max_size=3)):
            try:
                _set(request, path, draw(st.one_of(WRONG_TYPES, JSON_VALUES)))
            except (KeyError, IndexError, TypeError):
                pass  # an earlier replacement removed this path
        return Case(category, request)
    result = draw(RESULTS)
    if category == "output, call just made":
        request = {"type": OUTPUT_OP, "params": {"thread_id": "", "result": result}}
        return Case(category, request, fresh_call=True)
    if category == "output, any own thread":
        thread = draw(st.one_of(st.sampled_from(own.threads), st.sampled_from(WEIRD_IDS)))
    else:
        thread = draw(st.sampled_from(victim.threads))  # her call thread among them
    return Case(category, {"type": OUTPUT_OP, "params": {"thread_id": thread, "result": result}})


def _side(browser: Browser, label: str, secret: str) -> tuple[Side, list[str]]:
    """Cards and a waiting client tool call in new threads of this browser's user."""
    card_threads, cards, calls, others, problems = [], [], [], [], []
    for n in range(CARD_THREADS):
        turn = browser.create_thread(CARD)
        widgets = [item for item in turn.items_done if item["type"] == "widget"]
        if turn.status != 200 or turn.errors or len(widgets) != 1:
            problems.append(f"{label}'s card turn {n}: HTTP {turn.status}, {_summary(turn)}")
            continue
        card_threads.append(turn.thread_id)
        cards.append(widgets[0]["id"])
        others += [i["id"] for i in turn.items_done if i["type"] != "widget"]
        note = browser.send(turn.thread_id, f"{secret} {label} {n}")
        others += [item["id"] for item in note.items_done]
    turn = browser.create_thread(CALL)
    pending = [item for item in turn.items_done if item["type"] == "client_tool_call"]
    if turn.status != 200 or turn.errors or len(pending) != 1:
        problems.append(f"{label}'s client tool turn: HTTP {turn.status}, {_summary(turn)}")
    calls += [item["id"] for item in pending]
    others += [item["id"] for item in turn.items_done if item["type"] != "client_tool_call"]
    call_thread = turn.thread_id if turn.status == 200 and turn.events else "thr_missing"
    return Side(card_threads, cards, call_thread, calls, others), problems


def _summary(turn: Turn) -> str:
    return f"items {[i['type'] for i in turn.items_done]}, errors {turn.errors}"


def _state(browser: Browser, side: Side) -> str:
    threads = {thread["id"] for thread in browser.threads()}
    items = {t: browser.items(t) for t in side.threads if t in threads}
    return json.dumps({"threads": sorted(threads), "items": items}, sort_keys=True)


def _refreshes(browser: Browser, thread_id: str, item_id: str) -> bool:
    """A sync Refresh on the card answers it, updated in place."""
    action = {"type": "time.refresh", "payload": {"timezone": "Asia/Tokyo"}}
    reply = browser.request(
        "threads.sync_custom_action", thread_id=thread_id, item_id=item_id, action=action
    )
    if reply.status != 200:
        return False
    updated = reply.json().get("updated_item") or {}
    return bool(updated.get("id") == item_id and "Asia/Tokyo" in json.dumps(updated))


def run_project(suite: Suite, project: Project, index: int) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    fake = suite.fake
    fake.reset()
    backend = suite.running(project, "main")
    database = backend.database
    pid = backend.process.pid if backend.process else 0
    log_start = len(backend.log_text())
    secret = f"victim-card-note-{random.Random(suite.seed).getrandbits(64):x}"
    with suite.browser(backend) as victim_browser, suite.browser(backend) as fuzzer:
        victim, problems = _side(victim_browser, "her", secret)
        own, own_problems = _side(fuzzer, "the fuzzer", "fuzzer-note")
        failures += problems + own_problems
        if problems or own_problems or not (victim.cards and own.cards):
            return Row(CHECK, project.label, ["setup failed"], failures, 0.0)
        # One thread per worker for the outputs that follow a fresh client tool call.
        worker_threads = [fuzzer.create_thread(f"worker {n}").thread_id for n in range(WORKERS)]
        victim_id = user_id_of(victim_browser.cookie) or ""
        before = _state(victim_browser, victim)
        rows_before = database.user_rows(victim_id)
        markers = [secret.encode(), *(i.encode() for i in victim.items + victim.threads)]

        generated = collect(
            lambda category: cases(own, victim, category),
            CATEGORIES,
            suite.sizes.action_fuzz_requests,
            suite.seed + 104_729 * (index + 1),
        )
        tally = Tally()
        leaks: list[str] = []
        cross_accepted: list[str] = []
        fresh_failed: list[str] = []
        cookie = fuzzer.cookie or ""

        def send(worker: int) -> None:
            call_thread = worker_threads[worker]
            with suite.browser(backend) as client:
                client.set_session(cookie)
                for case in generated[worker::WORKERS]:
                    if case.fresh_call:
                        turn = client.send(call_thread, CALL)
                        if turn.status != 200 or turn.errors:
                            with tally.lock:
                                fresh_failed.append(f"HTTP {turn.status} {turn.errors}")
                    body = case.body(call_thread)
                    try:
                        reply = client.post(body)
                    except Exception as error:  # a dropped connection is a finding too
                        tally.dropped(error)
                        tally.record(case.category, 0, body)
                        continue
                    tally.record(case.category, reply.status, body)
                    if not 200 <= reply.status < 300:
                        continue
                    with tally.lock:
                        if case.category in CROSS_USER:
                            cross_accepted.append(f"HTTP {reply.status} for {body[:200]!r}")
                        if any(m in reply.body and m not in body for m in markers):
                            leaks.append(f"{case.category}: {body[:160]!r}")

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(send, range(WORKERS)))

        aftermath = Aftermath.of(tally, suite.sizes.action_fuzz_requests, backend, pid, log_start)
        after = _state(victim_browser, victim)
        rows_after = database.user_rows(victim_id)
        changed = before != after or rows_before != rows_after
        # Then she uses her own card and answers her own call: neither was taken.
        her_refresh = _refreshes(victim_browser, victim.card_threads[0], victim.cards[0])
        answer = victim_browser.stream(
            OUTPUT_OP, thread_id=victim.call_thread, result={"time_zone": "Europe/Paris"}
        )
        her_answer = answer.status == 200 and not answer.errors and bool(answer.reply_text)
        # Whatever the fuzz stored (outputs of any JSON, refreshed cards), each of the
        # fuzzer's threads still holds a normal conversation, and its cards refresh.
        surviving, broken = broken_threads(fuzzer)
        own_refreshed = sum(
            _refreshes(fuzzer, thread_id, card)
            for thread_id, card in zip(own.card_threads, own.cards, strict=True)
        )
    actions_accepted = tally.accepted_in("action on own card")
    outputs_accepted = tally.accepted_in("output, call just made", "output, any own thread")
    failures += aftermath.failures()
    if cross_accepted:
        failures.append(
            f"{len(cross_accepted)} requests on the other user's thread or items were "
            f"accepted: {cross_accepted[:3]}"
        )
    if leaks:
        failures.append(f"{len(leaks)} responses carried the other user's data: {leaks[:3]}")
    if changed:
        failures.append("the other user's threads, items or rows changed")
    if not her_refresh or not her_answer:
        failures.append(
            f"afterwards her card refreshed: {her_refresh}; her call answered: {her_answer} "
            f"({_summary(answer)})"
        )
    if broken:
        failures.append(f"{len(broken)} of the fuzzer's threads no longer work: {broken[:3]}")
    if own_refreshed != len(own.cards):
        failures.append(f"only {own_refreshed} of the fuzzer's {len(own.cards)} cards refresh")
    if fresh_failed:
        failures.append(f"{len(fresh_failed)} client tool calls were not made: {fresh_failed[:3]}")
    if not actions_accepted or not outputs_accepted:
        failures.append(
            f"the fuzz never reached a handler: {actions_accepted} actions and "
            f"{outputs_accepted} outputs accepted"
        )

    cross_sent = sum(sum(tally.by_category.get(c, Counter()).values()) for c in CROSS_USER)
    figures = [
        f"{tally.total} generated requests in {len(tally.by_category)} categories "
        f"(custom_action and sync_custom_action on {len(own.cards)}+{len(victim.cards)} time "
        "cards and other items; add_client_tool_output with any JSON)",
        f"accepted: {actions_accepted} actions on the fuzzer's cards, {outputs_accepted} "
        "client tool outputs",
        *aftermath.figures(),
        f"{cross_sent} requests on the other user's threads and items: accepted "
        f"{len(cross_accepted)}; her data read: {len(leaks)}, changed: {'YES' if changed else 0} "
        "(API view and database rows compared)",
        f"afterwards her card refreshes: {'yes' if her_refresh else 'NO'}, her waiting call "
        f"is answered: {'yes' if her_answer else 'NO'}",
        f"the fuzzer's {len(surviving)} threads still answer a normal message: "
        f"{len(surviving) - len(broken)}/{len(surviving)}; its cards refresh: "
        f"{own_refreshed}/{len(own.cards)}",
    ]
    metrics = aftermath.metrics() | {
        "cross-user requests": cross_sent,
        "cross-user accepted": len(cross_accepted),
        "reads": len(leaks),
        "changed": int(changed),
        "her card refreshes": int(her_refresh),
        "her call answered": int(her_answer),
        "actions accepted": actions_accepted,
        "outputs accepted": outputs_accepted,
        "broken threads": len(broken),
        "own cards": len(own.cards),
        "own cards refreshed": own_refreshed,
    }
    seconds = time.monotonic() - started
    return Row(CHECK, project.label, figures, failures, seconds, tally.details(), metrics)


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project, n) for n, project in enumerate(suite.projects)]
