"""The credential hold-back: one lone first call, holds that double, pauses for throttling, and
over HTTP: a wrong key never locked, recovery within one hold, no second call in a throttled window."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from exporter.dli import holdback as holdback_module
from exporter.dli.errors import Failure, Outcome
from exporter.dli.holdback import HOLD_MAX, HOLD_MIN, Holdback
from exporter.domain import Deadline
from exporter.simulator import DEMO_AK, Fault, Gateway, Simulator
from exporter.wiring import Exporter
from tests.helpers import SignedBy, captured_logs, jobs, scrape

Start = Callable[..., Exporter]
FAR = Deadline.after(3600)


def refused(status: int = 401, code: str = "APIGW.0301") -> Failure:
    return Failure(Outcome.AUTH, "Incorrect IAM authentication information", status=status, error_code=code,
                   request_id="rid-1")


def attempt(guard: Holdback, failure: Failure | None = None, project: str = "p1",
            deadline: Deadline = FAR) -> str:
    """One call through the guard: "sent" and its outcome, or "held" when it was not sent."""
    got = guard.call(deadline, project, lambda: failure if failure is not None else "answer")
    if isinstance(got, Failure):
        return "held" if got.outcome is Outcome.HELD else "sent, failed"
    return "sent"


def guard_at(now: list[float]) -> Holdback:
    return Holdback("AK/SK (AK...)", clock=lambda: now[0])


def test_holds_double_up_to_five_minutes_and_a_success_resets_them() -> None:
    now = [0.0]
    guard = guard_at(now)
    sent_at = []
    while len(sent_at) < 6:  # a call every second, each one refused when it is sent
        if attempt(guard, refused()) == "sent, failed":
            sent_at.append(now[0])
        now[0] += 1.0
    holds = [b - a for a, b in itertools.pairwise(sent_at)]
    assert holds == [HOLD_MIN, 2 * HOLD_MIN, 4 * HOLD_MIN, HOLD_MAX, HOLD_MAX] == [60, 120, 240, 300, 300]
    now[0] += HOLD_MAX
    assert attempt(guard) == "sent"  # a success: the next failure holds for the minimum again
    assert attempt(guard, refused(401, "APIGW.0301")) == "sent, failed"
    now[0] += HOLD_MIN - 1
    assert attempt(guard) == "held"
    now[0] += 1
    assert attempt(guard) == "sent"


def test_a_refused_credential_stays_rejected_across_holds_until_a_call_gets_through() -> None:
    """What dli_credential_held shows: from the first refusal, through the holds and the tries
    between them, until a call is let through (a 403 is: the gateway accepted the key)."""
    now = [0.0]
    guard = guard_at(now)
    assert not guard.rejected
    attempt(guard, refused())
    assert guard.rejected and attempt(guard) == "held"
    now[0] += HOLD_MIN
    assert attempt(guard, refused()) == "sent, failed" and guard.rejected  # the try after the hold
    now[0] += 2 * HOLD_MIN
    denied = Failure(Outcome.DENIED, "Permission denied", status=403, error_code="DLI.0003")
    assert attempt(guard, denied) == "sent, failed" and not guard.rejected
    attempt(guard, refused())
    now[0] += HOLD_MIN
    assert attempt(guard) == "sent" and not guard.rejected


def test_a_refused_call_is_not_sent_and_its_error_says_why_and_for_how_long() -> None:
    now = [0.0]
    guard = guard_at(now)
    attempt(guard, refused())
    sent: list[int] = []
    got = guard.call(FAR, "p2", lambda: sent.append(1))
    assert not sent and isinstance(got, Failure) and got.outcome is Outcome.HELD
    assert str(got) == ("not sent: the credential is held back for 60 s more after: authentication failed: "
                        "HTTP 401 APIGW.0301: Incorrect IAM authentication information (request_id=rid-1)")


def test_the_first_call_goes_alone_and_the_others_wait_for_its_answer() -> None:
    guard = Holdback("test")
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def answered() -> str:
        inside.set()
        release.wait(5)
        order.append("probe answered")
        return "answer"

    def probe() -> None:
        guard.call(Deadline.after(5), "p1", answered)

    def other(name: str) -> None:
        guard.call(Deadline.after(5), name, lambda: order.append(name))

    first = threading.Thread(target=probe)
    first.start()
    assert inside.wait(5)
    others = [threading.Thread(target=other, args=(f"p{i}",)) for i in range(2, 5)]
    for t in others:
        t.start()
    time.sleep(0.2)
    assert order == []  # all wait
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert order[0] == "probe answered" and sorted(order[1:]) == ["p2", "p3", "p4"]


def test_after_a_failure_without_an_answer_the_next_call_goes_alone_again() -> None:
    guard = Holdback("test")
    # No answer at all (a connection error) says nothing of the key: the next call is alone again.
    no_answer = Failure(Outcome.RETRY, "connection to dli refused")
    assert attempt(guard, no_answer) == "sent, failed"
    # The next call is the probe again: another one waits for it, and times out at its deadline.
    waited: list[object] = []
    guard.call(FAR, "p1", lambda: waited.append(guard.call(Deadline.after(0.1), "p2", lambda: "answer")))
    [late] = waited
    assert isinstance(late, Failure) and "deadline" in str(late)


def test_calls_that_waited_on_a_refused_first_call_are_not_sent() -> None:
    guard = Holdback("test")
    inside, release = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def refusal() -> Failure:
        inside.set()
        release.wait(5)
        return refused()

    def probe() -> None:
        guard.call(Deadline.after(5), "p1", refusal)
        outcomes.append("probe refused")

    def other() -> None:
        got = guard.call(Deadline.after(5), "p2", lambda: outcomes.append("sent"))
        if isinstance(got, Failure):
            outcomes.append(got.outcome.value)

    threads = [threading.Thread(target=probe)]
    threads[0].start()
    assert inside.wait(5)
    threads += [threading.Thread(target=other) for _ in range(3)]
    for t in threads[1:]:
        t.start()
    time.sleep(0.1)
    release.set()
    for t in threads:
        t.join(5)
    assert outcomes == ["probe refused", "held", "held", "held"]


def test_throttling_pauses_the_credential_until_the_window_the_transport_named() -> None:
    now = [0.0]
    guard = guard_at(now)
    assert attempt(guard) == "sent"
    throttled = Failure(Outcome.RETRY, "The throttling threshold has been reached.", status=429,
                        error_code="APIGW.0308", resume_at=63.5)
    with captured_logs("info") as log:
        assert attempt(guard, throttled) == "sent, failed"
        now[0] = 63.0
        assert attempt(guard) == "held"
    now[0] = 63.5
    assert attempt(guard) == "sent"
    [line] = log.getvalue().splitlines()
    assert "no calls with this credential until the next window" in line and "resume_in=63.5" in line


def test_one_log_line_per_hold_however_many_calls_fail_with_it() -> None:
    now = [0.0]
    guard = guard_at(now)
    answers = [refused(), refused(), refused()]  # calls that were in flight together, all refused
    inside, release = threading.Barrier(3), threading.Event()
    guard._trusted = True  # they were all admitted while the credential was trusted

    def refusal() -> Failure:
        inside.wait(5)
        release.wait(5)
        return answers.pop()

    with captured_logs("info") as log:
        threads = [threading.Thread(target=guard.call, args=(FAR, "p1", refusal)) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        release.set()
        for t in threads:
            t.join(5)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "retry_in=60" in lines[0] and "request_id=rid-1" in lines[0]


def test_the_failure_that_starts_a_hold_comes_back_marked_logged() -> None:
    """The reader logs what the hold-back has not: it learns that from the failure it gets back."""
    guard = Holdback("test")
    first = guard.call(FAR, "p1", refused)
    assert isinstance(first, Failure) and first.logged and first.outcome is Outcome.AUTH
    later = guard.call(FAR, "p1", refused)
    assert isinstance(later, Failure) and later.outcome is Outcome.HELD and not later.logged


# --- over HTTP ---

@pytest.fixture
def short_holds(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[float, float]]:
    """Holds of a fraction of a second, so that several fit in a test."""
    monkeypatch.setattr(holdback_module, "HOLD_MIN", 0.3)
    monkeypatch.setattr(holdback_module, "HOLD_MAX", 1.2)
    yield 0.3, 1.2


def _ups(exporter: Exporter) -> dict[str, float]:
    return scrape(exporter, timeout=10).by("dli_up")


PROJECTS = {f"p{i}": jobs(120, start=1000 * i) for i in range(1, 5)}


def test_a_wrong_key_costs_one_call_per_hold_never_locks_and_recovers_within_one_hold(
        exporter_for: Start, short_holds: tuple[float, float]) -> None:
    gateway = Gateway(lock_seconds=300)
    with Simulator(dict(PROJECTS), gateway=gateway) as sim:
        exporter = exporter_for(sim, sk="a-wrong-secret-key")  # default settings: both views
        for _ in range(5):  # scrapes within the first hold
            assert set(_ups(exporter).values()) == {0.0}
        assert [r.status for r in sim.recorded()] == [401]  # one call, alone; none for the others
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # holds of 0.3, 0.6 and 1.2 s run out in this time
            _ups(exporter)
            time.sleep(0.02)
        rejected = [r for r in sim.recorded() if r.status == 401]
        assert 2 <= len(rejected) <= 4 and gateway.lockouts == 0
        sim.credentials[DEMO_AK] = "a-wrong-secret-key"  # the key is fixed (here: on the server's side)
        fixed = time.monotonic()
        while set(_ups(exporter).values()) != {1.0}:
            assert time.monotonic() - fixed < short_holds[1] + 1.0, "not recovered within one hold"
            time.sleep(0.05)
    assert gateway.lockouts == 0


def test_without_the_hold_back_the_same_key_would_have_been_locked() -> None:
    """The simulator's lock-out is real: the calls the exporter saves are the ones that lock a key."""
    gateway = Gateway()
    with Simulator(dict(PROJECTS), gateway=gateway) as sim:
        for pid in PROJECTS:  # one call per project and view, as one unguarded sweep would make
            for _ in range(2):
                requests.get(f"{sim.url}/v1.0/{pid}/streaming/jobs?limit=100", auth=SignedBy(DEMO_AK, "wrong-key"),
                             timeout=5, headers={"X-Project-Id": pid})
    assert gateway.lockouts == 1


def test_an_iam_token_refused_right_after_its_login_holds_the_credential(exporter_for: Start) -> None:
    users = {("acme", "monitor"): "pw"}
    with Simulator({"p1": jobs(3), "p2": jobs(3, start=101)}, credentials={}, iam_users=users,
                   token_ttl=0) as sim:  # every token is stale at once: APIGW.0307
        exporter = exporter_for(sim, ak=None, sk=None, iam_username="monitor", iam_password="pw",
                                iam_domain="acme", iam_endpoint=sim.url)
        for _ in range(3):
            assert set(_ups(exporter).values()) == {0.0}
        logins = sim.recorded("/v3/")
        calls = sim.recorded("/v1.0/")
    assert len(logins) == 1 and [r.status for r in calls] == [401]  # no second login, no second call


def test_a_429_without_retry_after_is_never_followed_by_a_call_in_the_same_window(exporter_for: Start) -> None:
    gateway = Gateway(budget=2, window=60)
    with Simulator({"p1": jobs(250), "p2": jobs(10, start=1001)}, gateway=gateway) as sim:
        exporter = exporter_for(sim, show_detail=False, concurrency=1)
        with captured_logs("info") as log:
            first = _ups(exporter)
            calls = len(sim.recorded())
            for _ in range(5):
                assert set(_ups(exporter).values()) == {0.0}  # both projects wait for the next window
        assert len(sim.recorded()) == calls  # nothing sent since the 429
    assert 0.0 in first.values() and gateway.throttled >= 1
    assert [r.status for r in sim.recorded()].count(429) == gateway.throttled
    assert "no calls with this credential until the next window" in log.getvalue()


def test_a_retry_after_past_the_deadline_pauses_until_then(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(250), "p2": jobs(10, start=1001)}) as sim:
        exporter = exporter_for(sim, show_detail=False)
        assert set(_ups(exporter).values()) == {1.0}
        sim.add_fault(Fault("rate_limit", project_id="p1", retry_after=60))
        calls = len(sim.recorded())
        _ups(exporter)
        after_429 = len(sim.recorded())
        for _ in range(3):
            assert set(_ups(exporter).values()) == {0.0}
        assert len(sim.recorded()) == after_429 > calls


def test_a_403_refuses_one_list_of_one_project_not_the_key() -> None:
    """A permission refused (403: the gateway accepted the key) holds nothing back: the key's
    other calls go on, and it counts for no lock-out."""
    guard = Holdback("test")
    denied = Failure(Outcome.DENIED, "No permission.", status=403, error_code="DLI.0013")
    assert attempt(guard, denied) == "sent, failed"
    assert attempt(guard) == "sent" and guard.held_until is None
    assert str(denied) == "permission denied: HTTP 403 DLI.0013: No permission."
