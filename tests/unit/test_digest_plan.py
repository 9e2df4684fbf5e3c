"""What a digest run says, per group: new alert, recurrence, regression, silence under a mute."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.digest.plan import Kind, plan_digest, sighting
from bot.domain.alerts import AlertState, AlertThread, new_thread, sighted
from bot.errors.grouping import ErrorGroup, group_records
from bot.errors.records import ErrorRecord

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def groups(sample: dict[str, Any]) -> list[ErrorGroup]:
    records = [ErrorRecord.model_validate(r) for r in sample["records"][:20]]
    return group_records(records)


def _thread(group: ErrorGroup, state: AlertState, **changes: Any) -> AlertThread:
    thread = replace(
        new_thread("C1", "acme/image_tagger", group.fingerprint, sighting(group)),
        parent_ts="1.0",
        state=state,
    )
    return replace(thread, count=5, versions=("1.0.0",), first_seen_ms=1, **changes)


def test_groups_without_a_thread_become_new_alerts_oldest_first(groups: list[ErrorGroup]) -> None:
    actions = plan_digest("C1", "acme/image_tagger", groups, [], NOW)
    assert [a.kind for a in actions] == [Kind.NEW_ALERT] * len(groups)
    first_seen = [a.group.first_seen for a in actions]
    assert first_seen == sorted(first_seen)
    assert all(a.thread.parent_ts == "" and a.thread.state is AlertState.OPEN for a in actions)
    reported = [rid for a in actions for rid, _ in a.reported]
    assert sorted(reported) == sorted(rid for g in groups for rid in g.request_ids)


def test_known_groups_reply_regress_or_stay_silent(groups: list[ErrorGroup]) -> None:
    open_, resolved, muted, mute_over = groups[:4]
    threads = {
        open_.fingerprint: _thread(open_, AlertState.OPEN),
        resolved.fingerprint: _thread(resolved, AlertState.RESOLVED, state_changed_by="U1"),
        muted.fingerprint: _thread(muted, AlertState.MUTED, muted_until=NOW + timedelta(hours=1)),
        mute_over.fingerprint: _thread(mute_over, AlertState.MUTED, muted_until=NOW),
    }
    actions = {
        a.group.fingerprint: a for a in plan_digest("C1", "a", groups[:4], threads.values(), NOW)
    }
    assert actions[open_.fingerprint].kind is Kind.RECURRENCE
    regression = actions[resolved.fingerprint]
    assert regression.kind is Kind.REGRESSION
    assert regression.thread.state is AlertState.REGRESSED
    assert regression.replies
    silent = actions[muted.fingerprint]
    assert silent.kind is Kind.MUTED
    assert not silent.replies
    assert silent.thread.state is AlertState.MUTED
    assert silent.thread.count == 5 + muted.count  # counters still move
    over = actions[mute_over.fingerprint]
    assert (over.kind, over.mute_ended, over.thread.state) == (
        Kind.RECURRENCE, True, AlertState.OPEN,
    )  # fmt: skip


def test_muted_forever_stays_silent(groups: list[ErrorGroup]) -> None:
    group = groups[0]
    thread = _thread(group, AlertState.MUTED, muted_until=None)
    (action,) = plan_digest("C1", "a", [group], [thread], NOW)
    assert action.kind is Kind.MUTED


def test_a_sighting_adds_counts_and_versions(groups: list[ErrorGroup]) -> None:
    group = groups[0]
    merged, _ = sighted(_thread(group, AlertState.OPEN), sighting(group), NOW)
    assert merged.count == 5 + group.count
    assert set(merged.versions) == {"1.0.0", *group.versions}
    assert merged.first_seen_ms == 1
    assert merged.last_seen_ms == group.last_seen
    assert merged.parent_ts == "1.0"


def test_new_alerts_come_before_news_of_known_groups(groups: list[ErrorGroup]) -> None:
    known = groups[-1]
    actions = plan_digest("C1", "a", groups, [_thread(known, AlertState.OPEN)], NOW)
    assert actions[-1].group is known
    assert {a.kind for a in actions[:-1]} == {Kind.NEW_ALERT}


def test_a_threshold_holds_back_only_new_kinds_with_too_few_records(
    groups: list[ErrorGroup],
) -> None:
    counts = sorted({g.count for g in groups})
    assert len(counts) > 1, "the sample needs groups of different sizes"
    threshold = counts[-1]
    small = next(g for g in groups if g.count < threshold)
    known = {small.fingerprint: _thread(small, AlertState.OPEN)}
    resolved = next(g for g in groups if g.count < threshold and g is not small)
    known[resolved.fingerprint] = _thread(resolved, AlertState.RESOLVED)
    actions = plan_digest("C1", "acme/image_tagger", groups, known.values(), NOW, threshold)
    kinds = {a.group.fingerprint: a.kind for a in actions}
    new = {g.fingerprint for g in groups if g.fingerprint not in known}
    # New kinds below the threshold: nothing planned, so nothing of them is marked reported.
    assert {fp for fp, kind in kinds.items() if kind is Kind.NEW_ALERT} == {
        g.fingerprint for g in groups if g.fingerprint in new and g.count >= threshold
    }
    # Established threads and regressions are always told, however few the records.
    assert kinds[small.fingerprint] is Kind.RECURRENCE
    assert kinds[resolved.fingerprint] is Kind.REGRESSION
