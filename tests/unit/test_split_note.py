"""The note that opens the first reply of an alert split off an older grouping's alert: said
first, escaped (the old alert's headline is an error message, untrusted), within Slack's limits."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from bot.domain.alerts import AlertState, AlertThread
from bot.errors.grouping import ErrorGroup, group_records
from bot.errors.records import ErrorRecord
from bot.slack.blocks import alerts as alert_blocks
from bot.slack.blocks import base
from bot.slack.blocks import query as query_blocks
from tests.unit.test_blocks import assert_cannot_ping, assert_fits_slack, untrusted
from tests.unit.test_grouping_raise_sites import SKLEARN_NAN

FIRST_SEEN_MS = 1_764_000_000_000


def _earlier(headline: str, error_type: str = "AlgorithmError") -> AlertThread:
    return AlertThread(
        channel_id="C1",
        algorithm="acme/image_tagger",
        fingerprint="2:0123456789ab",
        parent_ts="1764000000.000100",
        state=AlertState.OPEN,
        muted_until=None,
        state_changed_by=None,
        state_changed_at=None,
        count=12,
        versions=("1.0.0",),
        first_seen_ms=FIRST_SEEN_MS,
        last_seen_ms=FIRST_SEEN_MS + 60_000,
        error_type=error_type,
        headline=headline,
        previous_fingerprint="0123456789ab",
    )


def _group(error: str = SKLEARN_NAN, **fields: Any) -> ErrorGroup:
    record = {"created_at": FIRST_SEEN_MS + 120_000, "request_id": "req-9", "error": error}
    (group,) = group_records([ErrorRecord.model_validate(record | fields)])
    return group


def _first_texts(message: base.SlackMessage) -> list[str]:
    first = message.blocks[0]
    assert first["type"] == "context"
    return [element["text"] for element in first["elements"]]


def test_the_split_note_comes_first_and_names_the_old_alert() -> None:
    earlier = _earlier("ValueError: X has 512 features per sample; expecting 2048")
    note = alert_blocks.split_note(earlier)
    reply = query_blocks.group_reply(_group(), lead=note).message
    assert _first_texts(reply) == [note]
    assert "ValueError: X has 512 features per sample; expecting 2048" in note
    assert base.date_token(FIRST_SEEN_MS) in note
    assert reply.blocks[1]["type"] == "header"  # then the group's own reply, as without a note
    assert reply.blocks[1:] == query_blocks.group_reply(_group()).message.blocks
    assert_fits_slack(reply)
    assert_cannot_ping(reply)


def test_a_headline_with_slack_syntax_cannot_ping_from_the_note() -> None:
    hostile = "<!channel> <@U0ADMIN> <https://evil.example|click> &amp; <#C0GENERAL>"
    note = alert_blocks.split_note(_earlier(hostile))
    assert "<!channel>" not in note
    assert "&lt;!channel&gt;" in note
    assert "&amp;amp;" in note
    reply = query_blocks.group_reply(_group(), lead=note).message
    assert_fits_slack(reply)
    assert_cannot_ping(reply)


def test_a_huge_headline_is_cut_without_breaking_an_entity() -> None:
    note = alert_blocks.split_note(_earlier("<" * 5000))
    assert len(note) < 600
    assert "&lt;&lt;" in note
    assert "&l…" not in note
    assert "&…" not in note
    reply = query_blocks.group_reply(_group(), lead=note).message
    assert_fits_slack(reply)
    assert_cannot_ping(reply)


def test_without_a_headline_the_note_names_the_error_type() -> None:
    note = alert_blocks.split_note(_earlier("", error_type="<!here> Type"))
    assert "&lt;!here&gt; Type" in note


@settings(max_examples=150, deadline=None)
@given(headline=untrusted, error_type=untrusted, message=untrusted, trace=untrusted)
def test_any_old_alert_and_any_group_make_a_first_reply_that_fits_and_cannot_ping(
    headline: str, error_type: str, message: str, trace: str
) -> None:
    error = f"error:\n{message}\nstacktrace:\nSome({trace})"
    group = _group(error, error_type=error_type or "AlgorithmError")
    note = alert_blocks.split_note(_earlier(headline, error_type))
    reply = query_blocks.group_reply(group, show_input=True, lead=note).message
    assert _first_texts(reply) == [note]
    assert_fits_slack(reply)
    assert_cannot_ping(reply)
