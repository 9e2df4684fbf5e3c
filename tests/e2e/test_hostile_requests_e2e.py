"""Whatever arrives at `/slack/events`: unsigned, stale or forged requests get 401 whatever
their body; signed but malformed payloads a 4xx or an answer, never a 5xx; no command text
makes a handler fail."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.testing.harness import SIGNING_SECRET, RunningBot, running_bot
from bot.testing.signing import sign


@pytest.fixture
async def bot() -> AsyncIterator[RunningBot]:
    async with running_bot() as running:
        yield running


async def _post(bot: RunningBot, body: str, headers: dict[str, str]) -> int:
    response = await bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    return response.status_code


UNSIGNED_BODIES = [
    "not json at all {{{",
    '{"type": "url_verification", "challenge": "x"}',
    "payload=%7Bnot-json",
    "",
    "\x00\xff" * 10,
]


@pytest.mark.parametrize("body", UNSIGNED_BODIES)
async def test_unsigned_stale_or_forged_requests_get_401_whatever_the_body(
    bot: RunningBot, body: str
) -> None:
    assert await _post(bot, body, {"content-type": "application/json"}) == 401
    stale = sign(SIGNING_SECRET, body, int(time.time()) - 600)
    assert await _post(bot, body, stale) == 401
    forged = sign("not-the-secret", body)
    assert await _post(bot, body, forged) == 401


def _interaction(payload: Any) -> str:
    return urlencode({"payload": json.dumps(payload)})


MALFORMED_SIGNED = [
    "payload=%7Bnot-json",
    _interaction([1, 2, 3]),
    _interaction({"type": "block_actions"}),
    _interaction({"type": "block_actions", "actions": []}),
    _interaction({"type": "block_actions", "actions": [{"action_id": "group_resolve"}]}),
    _interaction(
        {
            "type": "block_actions",
            "actions": [{"action_id": "group_resolve", "value": "{not json"}],
            "channel": {"id": "C_GENERAL"},
            "user": {"id": "U_ALICE"},
        }
    ),
    _interaction(
        {
            "type": "block_actions",
            "actions": [{"action_id": "group_mute", "block_id": "alert:[]"}],
            "channel": {"id": "C_GENERAL"},
            "user": {"id": "U_ALICE"},
            "container": {"message_ts": "1.2"},
        }
    ),
    _interaction({"type": "view_submission", "view": {}}),
    # Parts Bolt reads to pick a listener, of a shape Slack never sends (Bolt answered 500).
    _interaction({"type": "block_actions", "actions": "x"}),
    _interaction({"type": "block_actions", "actions": [None]}),
    _interaction({"type": "block_actions", "actions": [{"action_id": {"a": 1}}]}),
    _interaction({"type": "view_submission", "view": "x"}),
    _interaction({"type": "block_suggestion", "action_id": [1]}),
    _interaction({"type": "shortcut", "callback_id": {"x": 1}}),
    '{"type": "event_callback", "event": "x"}',
    '{"type": "event_callback", "event": {"type": {"a": 1}}}',
    '{"type": "event_callback", "event": {"type": "something_else"}}',
    "command=%2Falgo-errors",
    "command=%2Falgo-errors&text=list&channel_id=&user_id=",
]


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What a handler that failed leaves: an ERROR, or the internal-error answer."""
    return [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize("body", MALFORMED_SIGNED)
async def test_malformed_signed_payloads_never_get_a_5xx(
    bot: RunningBot, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    status = await _post(bot, body, sign(SIGNING_SECRET, body))
    assert status < 500, body
    await bot.slack.wait_idle(quiet_s=0.1)
    assert _failures(caplog) == []
    assert not any("went wrong" in e.text for e in bot.slack.ephemerals)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(max_size=5000))
async def test_no_command_text_makes_a_handler_fail(
    bot: RunningBot, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = urlencode(
        {
            "command": "/algo-errors",
            "text": text,
            "channel_id": "C_GENERAL",
            "user_id": "U_ALICE",
            "team_id": "T0001",
            "response_url": bot.slack.response_url(),
        }
    )
    response = await bot.http.post(
        f"{bot.url}/slack/events", content=body, headers=sign(SIGNING_SECRET, body)
    )
    assert response.status_code == 200, text
    await bot.slack.wait_idle(quiet_s=0.05)
    assert _failures(caplog) == [], text
    assert not any("went wrong" in e.text for e in bot.slack.ephemerals), text


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_ACTION = st.fixed_dictionaries(
    {"action_id": st.sampled_from(["group_resolve", "group_mute", "group_reopen", "other"])},
    optional={"value": _JSON, "block_id": _JSON, "selected_option": _JSON},
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=st.fixed_dictionaries(
        {"type": st.just("block_actions"), "actions": st.lists(_ACTION, min_size=1, max_size=2)},
        optional={"channel": _JSON, "user": _JSON, "container": _JSON, "response_url": _JSON},
    ),
    cut=st.integers(min_value=0, max_value=400),
)
async def test_random_and_truncated_interactions_never_get_a_5xx(
    bot: RunningBot, payload: dict[str, Any], cut: int, caplog: pytest.LogCaptureFixture
) -> None:
    whole = _interaction(payload)
    for body in (whole, whole[: max(len(whole) - cut, 0)]):
        assert await _post(bot, body, sign(SIGNING_SECRET, body)) < 500, body
    await bot.slack.wait_idle(quiet_s=0.05)
    assert _failures(caplog) == [], payload


_KNOWN_TYPES = st.sampled_from(
    ["block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut",
     "message_action", "event_callback", "url_verification"]
)  # fmt: skip


_BOLT_READS = ("actions", "view", "event", "callback_id", "action_id", "block_id", "user",
               "channel", "team", "command")  # fmt: skip


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=st.fixed_dictionaries(
        {"type": _KNOWN_TYPES | _JSON}, optional=dict.fromkeys(_BOLT_READS, _JSON)
    ),
    as_event=st.booleans(),
)
async def test_any_shape_of_the_parts_bolt_reads_never_gets_a_5xx(
    bot: RunningBot, payload: dict[str, Any], as_event: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Interactions and events whose parts (the ones Bolt reads to pick a listener among
    them) are any JSON at all."""
    if as_event:
        body = json.dumps(payload)
        headers = sign(SIGNING_SECRET, body, content_type="application/json")
    else:
        body = _interaction(payload)
        headers = sign(SIGNING_SECRET, body)
    assert await _post(bot, body, headers) < 500, body
    await bot.slack.wait_idle(quiet_s=0.05)
    assert _failures(caplog) == [], payload


async def test_a_command_whose_text_says_payload_is_answered(bot: RunningBot) -> None:
    """Bolt reads any form body containing "payload" as an interaction (and answers 404);
    the server hands Bolt what the form really says."""
    ack = await bot.command("acme/image_tagger type:payload_error")
    assert ack.status_code == 200
    assert "Looking up the recent errors of acme/image_tagger" in ack.json()["text"]
