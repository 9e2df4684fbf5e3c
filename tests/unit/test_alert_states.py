"""Every transition of the alert state machine, legal and illegal, against one table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.alerts import (
    MUTE_FOR,
    OWNER_ACTIONS,
    AlertAction,
    AlertState,
    AlertThread,
    IllegalTransition,
    Sighting,
    Telling,
    act,
    actions_offered,
    mute_expired,
    mute_is_over,
    new_thread,
    sighted,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BEFORE = NOW - timedelta(days=2)
"""When the thread last changed state, before any transition under test."""

OPEN, RESOLVED, MUTED, REGRESSED = (
    AlertState.OPEN, AlertState.RESOLVED, AlertState.MUTED, AlertState.REGRESSED
)  # fmt: skip
RESOLVE, MUTE, REOPEN = AlertAction.RESOLVE, AlertAction.MUTE, AlertAction.REOPEN
RESOLVE_NEXT = AlertAction.RESOLVE_NEXT
TAKE, ASSIGN, RELEASE = AlertAction.TAKE, AlertAction.ASSIGN, AlertAction.RELEASE
STATE_ACTIONS = [action for action in AlertAction if action not in OWNER_ACTIONS]
"""The actions that move the state; take, assign and release change only the owner."""

RULES: dict[tuple[AlertState, AlertAction], AlertState] = {
    (OPEN, RESOLVE): RESOLVED,
    (REGRESSED, RESOLVE): RESOLVED,
    (OPEN, RESOLVE_NEXT): RESOLVED,
    (REGRESSED, RESOLVE_NEXT): RESOLVED,
    (OPEN, MUTE): MUTED,
    (REGRESSED, MUTE): MUTED,
    (RESOLVED, REOPEN): OPEN,
    (MUTED, REOPEN): OPEN,
}
"""Where each legal (state, action) leads; every pair not here is illegal."""

MUTE_LENGTHS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "forever": None,
}
PAST_TENSE = {RESOLVE: "resolved", RESOLVE_NEXT: "resolved", MUTE: "muted", REOPEN: "reopened"}

THREAD = AlertThread(
    channel_id="C1", algorithm="acme/x", fingerprint="f1", parent_ts="1.0",
    state=OPEN, muted_until=None, state_changed_by="U0", state_changed_at=BEFORE,
    count=5, versions=("1.0", "2.0"), first_seen_ms=1_000, last_seen_ms=2_000,
    error_type="KeyError", headline="KeyError: 'x'", previous_fingerprint="old",
    owner="U5", owner_since=BEFORE,
)  # fmt: skip
"""Owned, so every transition is seen to keep the owner."""


def in_state(state: AlertState, muted_until: datetime | None = None) -> AlertThread:
    return replace(THREAD, state=state, muted_until=muted_until)


STARTS: dict[str, AlertThread] = {
    "open": in_state(OPEN),
    "resolved": in_state(RESOLVED),
    "regressed": in_state(REGRESSED),
    "muted-until-later": in_state(MUTED, NOW + timedelta(hours=1)),
    "muted-forever": in_state(MUTED),
    "muted-ran-out": in_state(MUTED, NOW - timedelta(minutes=1)),
}


def test_the_starting_threads_cover_every_state() -> None:
    assert {t.state for t in STARTS.values()} == set(AlertState)
    assert set(MUTE_LENGTHS) == set(MUTE_FOR)


def legal_acts() -> Iterator[object]:
    for name, start in STARTS.items():
        for action in STATE_ACTIONS:
            if (start.state, action) not in RULES:
                continue
            choices = MUTE_LENGTHS.items() if action is MUTE else [(None, None)]
            for choice, length in choices:
                yield pytest.param(start, action, choice, length, id=f"{name}-{action}-{choice}")


def illegal_acts() -> Iterator[object]:
    for name, start in STARTS.items():
        for action in STATE_ACTIONS:
            if (start.state, action) not in RULES:
                yield pytest.param(start, action, id=f"{name}-{action}")


@pytest.mark.parametrize(("start", "action", "choice", "length"), list(legal_acts()))
def test_a_legal_action_changes_the_state_and_nothing_else(
    start: AlertThread, action: AlertAction, choice: str | None, length: timedelta | None
) -> None:
    after = act(start, action, user="U9", now=NOW, mute=choice)
    assert after == replace(
        start,
        state=RULES[start.state, action],
        muted_until=NOW + length if length is not None else None,
        state_changed_by="U9",
        state_changed_at=NOW,
        resolved_through="2.0" if action is RESOLVE_NEXT else None,  # the highest version seen
    )


@pytest.mark.parametrize(("start", "action"), list(illegal_acts()))
def test_an_illegal_action_tells_the_user_the_alerts_state(
    start: AlertThread, action: AlertAction
) -> None:
    with pytest.raises(IllegalTransition) as raised:
        act(start, action, user="U9", now=NOW, mute="1h")
    assert str(raised.value) == (
        f"this alert is {start.state.value}; it cannot be {PAST_TENSE[action]}"
    )


@pytest.mark.parametrize("choice", ["1y", "", "1H", None])
@pytest.mark.parametrize("state", [OPEN, REGRESSED])
def test_an_unknown_mute_length_is_refused(state: AlertState, choice: str | None) -> None:
    with pytest.raises(IllegalTransition, match="is not a mute length"):
        act(in_state(state), MUTE, user="U9", now=NOW, mute=choice)


def accepted(state: AlertState, action: AlertAction) -> bool:
    try:
        act(in_state(state), action, user="U9", now=NOW, mute="1h")
    except IllegalTransition:
        return False
    return True


@pytest.mark.parametrize("state", list(AlertState))
def test_the_buttons_offer_exactly_the_actions_the_rules_accept(state: AlertState) -> None:
    offered = actions_offered(in_state(state))
    assert len(offered) == len(set(offered))
    assert set(offered) - OWNER_ACTIONS == {action for (s, action) in RULES if s is state}
    assert set(offered) - OWNER_ACTIONS == {a for a in STATE_ACTIONS if accepted(state, a)}
    assert set(offered) >= OWNER_ACTIONS  # owned: take (someone else), assign, hand back
    unowned = replace(in_state(state), owner=None, owner_since=None)
    assert RELEASE not in actions_offered(unowned)


SEEN = Sighting(count=3, versions=("2.0", "0.9", "1.5"), first_seen_ms=500, last_seen_ms=3_000,
                error_type="ValueError", headline="ValueError: y")  # fmt: skip
GROWN = {
    "count": 8, "versions": ("0.9", "1.0", "1.5", "2.0"), "first_seen_ms": 500,
    "last_seen_ms": 3_000, "error_type": "ValueError", "headline": "ValueError: y",
}  # fmt: skip
"""THREAD's counters after SEEN."""

UNCHANGED: dict[str, object] = {}
SIGHTINGS: dict[str, tuple[Telling, dict[str, object]]] = {
    "open": (Telling.REPLY, UNCHANGED),
    "regressed": (Telling.REPLY, UNCHANGED),  # no second broadcast
    "resolved": (
        Telling.BROADCAST,
        {"state": REGRESSED, "state_changed_by": None, "state_changed_at": NOW},
    ),
    "muted-until-later": (Telling.SILENT, UNCHANGED),
    "muted-forever": (Telling.SILENT, UNCHANGED),
    "muted-ran-out": (
        Telling.REPLY,
        {
            "state": OPEN,
            "muted_until": None,
            "state_changed_by": None,
            "state_changed_at": NOW - timedelta(minutes=1),
        },
    ),
}
"""How a digest tells new occurrences for each starting thread, and what state it leaves."""


@pytest.mark.parametrize("name", list(STARTS))
def test_new_occurrences_are_told_by_the_state_and_always_counted(name: str) -> None:
    telling, state_changes = SIGHTINGS[name]
    after, told = sighted(STARTS[name], SEEN, NOW)
    assert told is telling
    assert after == replace(STARTS[name], **GROWN, **state_changes)  # type: ignore[arg-type]


def test_a_mute_ending_exactly_now_is_over() -> None:
    start = in_state(MUTED, NOW)
    after, told = sighted(start, SEEN, NOW)
    assert told is Telling.REPLY
    assert (after.state, after.muted_until, after.state_changed_at) == (OPEN, None, NOW)


def test_an_older_sighting_keeps_the_known_first_and_last_seen() -> None:
    inside = replace(SEEN, versions=("1.0",), first_seen_ms=1_500, last_seen_ms=1_600)
    after, _ = sighted(THREAD, inside, NOW)
    assert (after.count, after.versions, after.first_seen_ms, after.last_seen_ms) == (
        8, ("1.0", "2.0"), 1_000, 2_000
    )  # fmt: skip


@pytest.mark.parametrize("ended", [NOW, NOW - timedelta(days=1)], ids=["now", "a-day-ago"])
def test_a_mute_that_ran_out_opens_the_alert_again(ended: datetime) -> None:
    start = in_state(MUTED, ended)
    assert mute_is_over(start, NOW)
    assert mute_expired(start, NOW) == replace(
        start, state=OPEN, muted_until=None, state_changed_by=None, state_changed_at=ended
    )


NOT_OVER = {
    "open": in_state(OPEN),
    "resolved": in_state(RESOLVED),
    "regressed": in_state(REGRESSED),
    "muted-forever": in_state(MUTED),
    "muted-one-second-more": in_state(MUTED, NOW + timedelta(seconds=1)),
}


@pytest.mark.parametrize("name", list(NOT_OVER))
def test_only_a_mute_that_ran_out_can_expire(name: str) -> None:
    assert not mute_is_over(NOT_OVER[name], NOW)
    with pytest.raises(IllegalTransition, match="not muted, or its mute has not run out"):
        mute_expired(NOT_OVER[name], NOW)


def test_a_new_kind_of_error_starts_an_open_thread_with_its_counters() -> None:
    thread = new_thread("C1", "acme/x", "f1", SEEN)
    assert thread == AlertThread(
        channel_id="C1", algorithm="acme/x", fingerprint="f1", parent_ts="", state=OPEN,
        muted_until=None, state_changed_by=None, state_changed_at=None, count=3,
        versions=SEEN.versions, first_seen_ms=500, last_seen_ms=3_000, error_type="ValueError",
        headline="ValueError: y",
    )  # fmt: skip


sightings = st.builds(
    Sighting,
    count=st.integers(1, 50),
    versions=st.lists(st.sampled_from(["1.0", "1.1", "2.0"]), max_size=2).map(tuple),
    first_seen_ms=st.integers(0, 10_000),
    last_seen_ms=st.integers(10_000, 20_000),
    error_type=st.just("E"),
    headline=st.just("h"),
    latest_version=st.sampled_from([None, "1.0", "3f2a9c1"]),
)
events = st.lists(
    st.one_of(
        st.tuples(st.just("act"), st.sampled_from(list(AlertAction)),
                  st.sampled_from([*MUTE_FOR, "1y"])),
        st.tuples(st.just("sighted"), sightings),
        st.tuples(st.just("expire")),
        st.tuples(st.just("wait"), st.integers(0, 8 * 24 * 60).map(lambda m: timedelta(minutes=m))),
    ),
    max_size=30,
)  # fmt: skip


@given(sightings, events)
def test_any_sequence_of_events_keeps_the_invariants(
    first: Sighting, history: list[tuple[object, ...]]
) -> None:
    thread, now = new_thread("C1", "acme/x", "f1", first), NOW
    for event in history:
        before = thread
        match event:
            case ("act", AlertAction() as action, str() as choice):
                try:
                    thread = act(thread, action, user="U1", now=now, mute=choice, assignee="U2")
                except IllegalTransition:
                    assert (
                        action not in actions_offered(before)
                        or (action is AlertAction.MUTE and choice not in MUTE_FOR)
                        or (action is TAKE and before.owner == "U1")
                        or (action is ASSIGN and before.owner == "U2")
                        or (action is RELEASE and before.owner != "U1")
                    )
                else:
                    assert action in actions_offered(before)
                    if action in OWNER_ACTIONS:
                        assert thread.state is before.state
                    else:
                        assert thread.state is RULES[before.state, action]
                        assert thread.owner == before.owner
            case ("sighted", Sighting() as seen):
                thread, _ = sighted(thread, seen, now)
                assert thread.count == before.count + seen.count
            case ("expire",):
                if mute_is_over(thread, now):
                    thread = mute_expired(thread, now)
                else:
                    with pytest.raises(IllegalTransition):
                        mute_expired(thread, now)
            case ("wait", timedelta() as passed):
                now += passed
        assert thread.muted_until is None or thread.state is MUTED
        assert thread.resolved_through is None or thread.state is RESOLVED
        assert thread.count >= before.count
        if thread.state is REGRESSED and before.state is not REGRESSED:
            assert event[0] == "sighted"
            assert before.state is RESOLVED


# -- owner: take, assign, release ---------------------------------------------------------


@pytest.mark.parametrize("name", list(STARTS))
def test_take_assign_and_release_change_the_owner_and_never_the_state(name: str) -> None:
    start = STARTS[name]
    taken = act(start, TAKE, user="U9", now=NOW)
    assert taken == replace(start, owner="U9", owner_since=NOW)
    assigned = act(taken, ASSIGN, user="U9", now=NOW, assignee="U7")
    assert assigned == replace(start, owner="U7", owner_since=NOW)
    released = act(assigned, RELEASE, user="U7", now=NOW)
    assert released == replace(start, owner=None, owner_since=None)


@pytest.mark.parametrize(
    ("owner", "action", "assignee", "why"),
    [
        ("U9", TAKE, None, "you already own this alert"),
        ("U7", ASSIGN, "U7", "they already own this alert"),
        (
            "U7",
            RELEASE,
            None,
            "only its owner can hand it back; take it or assign it to someone instead",
        ),
        ("U7", ASSIGN, None, "no one was chosen to own it"),
        (None, RELEASE, None, "nobody owns this alert; there is nothing to hand back"),
    ],
)
def test_an_owner_change_that_changes_nothing_is_refused(
    owner: str | None, action: AlertAction, assignee: str | None, why: str
) -> None:
    with pytest.raises(IllegalTransition, match=f"^{why}$"):
        act(replace(THREAD, owner=owner), action, user="U9", now=NOW, assignee=assignee)


# -- resolved in the next version after V ---------------------------------------------------


def _seen(*versions: str) -> Sighting:
    return replace(SEEN, versions=versions, latest_version=versions[-1] if versions else None)


@pytest.mark.parametrize(
    ("versions", "telling"),
    [
        (("2.0.0",), Telling.REPLY),  # V itself
        (("1.9.3", "2.0.0"), Telling.REPLY),  # older ones
        ((), Telling.REPLY),  # no version: never newer
        (("2.0.0-rc.1",), Telling.REPLY),  # a pre-release of V is older
        (("2.0.1",), Telling.BROADCAST),
        (("1.0.0", "2.10.0"), Telling.BROADCAST),  # one newer occurrence is enough
        (("3f2a9c1",), Telling.BROADCAST),  # a development build: not V, so newer
    ],
)
def test_resolved_in_the_next_version_tells_old_versions_quietly(
    versions: tuple[str, ...], telling: Telling
) -> None:
    resolved = act(
        replace(THREAD, versions=("1.9.3", "2.0.0", "3f2a9c1"), latest_version="3f2a9c1"),
        RESOLVE_NEXT, user="U9", now=BEFORE,
    )  # fmt: skip
    assert resolved.resolved_through == "2.0.0"  # the highest semantic version, not the latest
    after, told = sighted(resolved, _seen(*versions), NOW)
    assert told is telling
    if telling is Telling.REPLY:
        assert (after.state, after.resolved_through) == (RESOLVED, "2.0.0")
        assert after.count == resolved.count + SEEN.count  # the counters still move
    else:
        assert (after.state, after.resolved_through, after.owner) == (REGRESSED, None, "U5")


def test_without_semantic_versions_v_is_the_latest_version_seen() -> None:
    hashes = replace(THREAD, versions=("a1b2c3d", "e4f5a6b"), latest_version="e4f5a6b")
    assert act(hashes, RESOLVE_NEXT, user="U9", now=NOW).resolved_through == "e4f5a6b"
    unversioned = replace(THREAD, versions=(), latest_version=None)
    assert RESOLVE_NEXT not in actions_offered(unversioned)
    with pytest.raises(IllegalTransition, match="no version of it was seen"):
        act(unversioned, RESOLVE_NEXT, user="U9", now=NOW)


def test_resolving_again_or_reopening_forgets_v() -> None:
    through = act(THREAD, RESOLVE_NEXT, user="U9", now=NOW)
    reopened = act(through, REOPEN, user="U9", now=NOW)
    assert reopened.resolved_through is None
    assert act(reopened, RESOLVE, user="U9", now=NOW).resolved_through is None
