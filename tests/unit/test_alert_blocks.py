"""Alert messages of digests: state, buttons that carry their key, limits, escaping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from bot.digest.plan import sighting
from bot.domain.alerts import AlertRef, AlertState, AlertThread, new_thread
from bot.errors.grouping import ErrorGroup, group_records
from bot.errors.records import ErrorRecord
from bot.slack.blocks import alerts as alert_blocks
from bot.slack.blocks import base
from bot.slack.blocks import query as query_blocks
from bot.usecases.results import FailureKind, LookupFailure, QueryResult
from tests.unit.test_blocks import assert_cannot_ping, assert_fits_slack, untrusted

CHANGED = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def group(sample_record_by_bug: dict[str, Any]) -> ErrorGroup:
    record = ErrorRecord.model_validate(sample_record_by_bug["py-notify-channel-id-int"])
    (found,) = group_records([record])
    return found


def _thread(group: ErrorGroup, **changes: Any) -> AlertThread:
    return replace(
        new_thread("C1", "acme/image_tagger", group.fingerprint, sighting(group)),
        parent_ts="1.0",
        **changes,
    )


def _actions(message: base.SlackMessage) -> dict[str, Any]:
    (block,) = [b for b in message.blocks if b["type"] == "actions"]
    return {element["action_id"]: element for element in block["elements"]} | {
        "block_id": block["block_id"]
    }


OWNING = {"group_take", "group_assign"}
"""Offered in every state; `group_release` too while someone owns it."""


def test_an_open_alert_offers_resolve_mute_and_ownership(group: ErrorGroup) -> None:
    thread = _thread(group)
    assert thread.versions  # so resolving in the next version is offered
    message = alert_blocks.alert_parent(thread)
    actions = _actions(message)
    assert set(actions) == {
        "group_resolve", "group_resolve_next", "group_mute", "block_id", *OWNING,
    }  # fmt: skip
    assert actions["group_assign"]["type"] == "users_select"
    assert "No owner yet" in str(message.blocks)
    ref = AlertRef.parse(actions["group_resolve"]["value"])
    assert ref is not None
    assert ref.matches(thread)
    assert not ref.matches(replace(thread, algorithm="acme/other"))
    assert len(actions["group_resolve"]["value"]) < 40  # an id, never the algorithm's name
    assert [o["value"] for o in actions["group_mute"]["options"]] == ["1h", "24h", "7d", "forever"]
    assert actions["block_id"] == "alert:" + alert_blocks.alert_key(thread)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"state": AlertState.RESOLVED, "state_changed_by": "U9", "state_changed_at": CHANGED},
         ":white_check_mark: *Resolved* by <@U9> <!date^"),
        ({"state": AlertState.MUTED, "state_changed_by": "U9", "state_changed_at": CHANGED,
          "muted_until": CHANGED + timedelta(hours=24)}, ":mute: *Muted* by <@U9> until <!date^"),
        ({"state": AlertState.MUTED, "state_changed_by": "U9", "muted_until": None},
         ":mute: *Muted* by <@U9> until reopened"),
    ],
)  # fmt: skip
def test_a_resolved_or_muted_alert_says_who_and_offers_reopen(
    group: ErrorGroup, changes: dict[str, Any], line: str
) -> None:
    message = alert_blocks.alert_parent(_thread(group, **changes))
    assert line in str(message.blocks)
    assert set(_actions(message)) == {"group_reopen", "block_id", *OWNING}


def test_an_owned_alert_names_its_owner_since_when_and_offers_to_hand_it_back(
    group: ErrorGroup,
) -> None:
    owned = _thread(group, owner="U7", owner_since=CHANGED, state=AlertState.RESOLVED)
    message = alert_blocks.alert_parent(owned)
    assert ":bust_in_silhouette: Owner: <@U7> since <!date^" in str(message.blocks)
    assert set(_actions(message)) == {"group_reopen", "group_release", "block_id", *OWNING}


def test_resolved_in_the_next_version_says_after_which(group: ErrorGroup) -> None:
    resolved = _thread(
        group, state=AlertState.RESOLVED, state_changed_by="U9", state_changed_at=CHANGED,
        resolved_through="2.3.0",
    )  # fmt: skip
    text = str(alert_blocks.alert_parent(resolved).blocks)
    assert "*Resolved in the next version after 2.3.0* by <@U9>" in text
    unversioned = _thread(group, versions=(), latest_version=None)
    assert "group_resolve_next" not in _actions(alert_blocks.alert_parent(unversioned))


def test_a_regression_says_so(group: ErrorGroup) -> None:
    regressed = _thread(group, state=AlertState.REGRESSED, state_changed_at=CHANGED)
    message = alert_blocks.alert_parent(regressed)
    assert ":rotating_light: *Regressed*: it was resolved and came back <!date^" in str(
        message.blocks
    )
    assert set(_actions(message)) == {
        "group_resolve", "group_resolve_next", "group_mute", "block_id", *OWNING,
    }  # fmt: skip
    reply = alert_blocks.recurrence_reply(group, regression=True)
    assert reply.text.startswith("Regression: 1 new:")


def test_alert_messages_snapshot(group: ErrorGroup, snapshot: SnapshotAssertion) -> None:
    assert alert_blocks.alert_parent(_thread(group)) == snapshot
    assert alert_blocks.recurrence_reply(group) == snapshot


def test_on_call_messages_snapshot(group: ErrorGroup, snapshot: SnapshotAssertion) -> None:
    owned = _thread(group, owner="U7", owner_since=CHANGED)
    assert alert_blocks.alert_parent(owned, notify=("U1", "S2")) == snapshot  # a new alert
    assert alert_blocks.owner_changed(owned, by="U7") == snapshot  # took it
    assert alert_blocks.owner_changed(owned, by="U9") == snapshot  # assigned it
    assert alert_blocks.owner_changed(_thread(group), by="U7") == snapshot  # handed it back
    resolved = _thread(
        group, state=AlertState.RESOLVED, state_changed_by="U7", state_changed_at=CHANGED,
        resolved_through="2.0.1", owner="U7",
    )  # fmt: skip
    assert alert_blocks.alert_parent(resolved) == snapshot
    assert alert_blocks.recurrence_reply(group, resolved) == snapshot  # told quietly
    regressed = replace(resolved, state=AlertState.REGRESSED, resolved_through=None)
    assert alert_blocks.recurrence_reply(group, regressed, regression=True, notify=("U1",)) == (
        snapshot
    )
    down = LookupFailure(FailureKind.UNAVAILABLE, "acme/x", "503")
    assert alert_blocks.cluster_outage("acme/x", down, ("U1", "S2")) == snapshot


def test_an_outage_that_is_not_the_cluster_s_says_what_the_cluster_answered() -> None:
    """Three runs in a row failed because the algorithm is gone or the key may no longer read
    it: the notice says so, and what to do, as a query's failure would; not "unreachable"."""
    for kind, said in [
        (FailureKind.ALGORITHM_NOT_FOUND, "There is no algorithm *acme/x* on this cluster."),
        (FailureKind.FORBIDDEN, "The bot's key may not read the errors of *acme/x*."),
        (FailureKind.UNAUTHORIZED, "The cluster rejected the bot's credentials."),
    ]:
        notice = alert_blocks.cluster_outage("acme/x", LookupFailure(kind, "acme/x", "no such"))
        assert said in notice.text
        assert notice.text.count("acme/x") == 2  # the cause names it, then how to unsubscribe
        assert "could not reach" not in notice.text
        assert "not lost" not in notice.text  # an algorithm gone has no new errors to keep
        assert "`/algo-errors unsubscribe acme/x` stops them." in notice.text
        assert "Details: no such" in str(notice.blocks)  # the cluster's own words
    down = LookupFailure(FailureKind.UNAVAILABLE, "acme/x", "cluster answered 503")
    assert "could not reach the Algorithmia cluster (cluster answered 503)" in (
        alert_blocks.cluster_outage("acme/x", down).text
    )


SLACK_IDS = ("U0G9QF9C6", "W0G9QF9C6", "S0614TZR7")
"""Ids as Slack sends them: the only mentions the bot may write."""


@settings(max_examples=100, deadline=None)
@given(headline=untrusted, algorithm=untrusted, versions=st.lists(untrusted, max_size=5),
       user=untrusted, owner=untrusted, through=untrusted, state=st.sampled_from(AlertState),
       notify=st.lists(st.one_of(untrusted, st.sampled_from(SLACK_IDS)), max_size=10))  # fmt: skip
def test_alerts_fit_and_cannot_ping(
    group: ErrorGroup,
    headline: str,
    algorithm: str,
    versions: list[str],
    user: str,
    owner: str,
    through: str,
    state: AlertState,
    notify: list[str],
) -> None:
    """Whatever the stored values say (a forged id, a tampered row), only ids shaped like
    Slack's become mentions; everything else is escaped text or left out."""
    thread = _thread(
        group, headline=headline, algorithm=algorithm, versions=tuple(versions), state=state,
        state_changed_by=user or None, state_changed_at=CHANGED, owner=owner or None,
        owner_since=CHANGED, resolved_through=through or None,
    )  # fmt: skip
    messages = (
        alert_blocks.alert_parent(thread, notify=notify),
        alert_blocks.recurrence_reply(group, thread, regression=True, notify=notify),
        alert_blocks.owner_changed(thread, by=user),
        alert_blocks.cluster_outage(
            algorithm, LookupFailure(FailureKind.UNAVAILABLE, algorithm, headline), notify
        ),
        alert_blocks.cluster_outage(
            algorithm, LookupFailure(FailureKind.FORBIDDEN, algorithm, headline), notify
        ),
    )
    for message in messages:
        assert_fits_slack(message)
        allowed = tuple(i for i in (user, owner, *notify) if base.mention(i))
        assert_cannot_ping(message, allowed_mentions=allowed)
    assert len(_actions(messages[0])["block_id"]) <= 255


def test_the_edit_that_ends_a_mute_says_so_and_later_edits_do_not(group: ErrorGroup) -> None:
    opened = _thread(group, state=AlertState.OPEN, state_changed_at=CHANGED)
    ended = str(alert_blocks.alert_parent(opened, mute_ended=True).blocks)
    assert ":bell: *Open*: the mute ran out" in ended
    later = str(alert_blocks.alert_parent(opened).blocks)
    assert "mute ran out" not in later
    assert ":red_circle: *Open*" in later


def test_a_long_algorithm_name_keeps_every_element_within_slack_s_limits(
    group: ErrorGroup,
) -> None:
    thread = _thread(group, algorithm="acme/" + "n" * 3000)  # valid: names have no length limit
    message = alert_blocks.alert_parent(thread)
    assert_fits_slack(message)
    (actions,) = [b for b in message.blocks if b["type"] == "actions"]
    assert len(actions["block_id"]) <= 255
    assert all(len(e.get("value", "")) <= 2000 for e in actions["elements"])
    ref = AlertRef.parse(actions["block_id"].removeprefix("alert:"))
    assert ref is not None
    assert ref.matches(thread)


WEB = "https://algorithmia.example.com"


def test_the_algorithm_links_to_its_console_page_only_when_it_is_a_valid_name(
    group: ErrorGroup,
) -> None:
    linked = alert_blocks.alert_parent(_thread(group), web_url=WEB)
    link = f"<{WEB}/algorithms/acme/image_tagger|acme/image_tagger>"
    assert f"*Algorithm*\\n{link}" in str(linked.blocks)
    down = LookupFailure(FailureKind.UNAVAILABLE, "acme/image_tagger", "503")
    assert link in alert_blocks.cluster_outage("acme/image_tagger", down, web_url=WEB).text
    gone = LookupFailure(FailureKind.ALGORITHM_NOT_FOUND, "acme/image_tagger")
    assert link in alert_blocks.cluster_outage("acme/image_tagger", gone, web_url=WEB).text
    assert link in alert_blocks.cluster_recovered("acme/image_tagger", WEB).text
    # Not a name (an id, or anything a row could hold): the text, escaped, never a link.
    for algorithm in ("id:3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8", "acme/x|<!here>", "a b/c"):
        message = alert_blocks.alert_parent(_thread(group, algorithm=algorithm), web_url=WEB)
        assert WEB not in str(message.blocks)
        assert_cannot_ping(message)


def test_an_id_query_links_the_name_its_records_give(sample_record_by_bug: dict[str, Any]) -> None:
    record = ErrorRecord.model_validate(
        sample_record_by_bug["py-notify-channel-id-int"] | {"username": "acme", "algoname": "x"}
    )
    result = QueryResult(
        "id:3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8", tuple(group_records([record])), 1
    )
    text = str(query_blocks.query_parent(result, web_url=WEB).blocks[0])
    assert f"*<{WEB}/algorithms/acme/x|acme/x>* (id:3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8)" in text
    forged = record.model_copy(update={"username": "ac|me>"})
    other = QueryResult(result.target, tuple(group_records([forged])), 1)
    assert WEB not in str(query_blocks.query_parent(other, web_url=WEB).blocks)
    # A pipeline's errors come up into its caller's log named after the algorithm that failed:
    # records that name two algorithms name none (the newest's would link the wrong one).
    inner = record.model_copy(update={"algoname": "inner", "request_id": "req-inner",
                                      "created_at": record.created_at + 1})  # fmt: skip
    mixed = QueryResult(result.target, tuple(group_records([record, inner])), 2)
    assert WEB not in str(query_blocks.query_parent(mixed, web_url=WEB).blocks)
