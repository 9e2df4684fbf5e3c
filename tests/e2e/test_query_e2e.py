"""`/algo-errors` end to end: the bot served over HTTP, a Slack Web API stand-in, the sample
cluster, slash commands signed like Slack signs them. Assertions are on what Slack received."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.testing.harness import API_KEY, RunningBot, running_bot
from bot.testing.sample_cluster import fresh_record, sample_bug_labels
from bot.testing.slack_stand_in import RateLimit, SlackStandIn
from bot.usecases.turns import CpuTurns

SAMPLE_UUID = "3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8"


@pytest.fixture
async def bot() -> AsyncIterator[RunningBot]:
    async with running_bot() as running:
        yield running


def _posted_text(slack: SlackStandIn) -> str:
    return "\n".join(str(m.blocks) + m.text for m in slack.messages)


def _mrkdwn_texts(value: Any) -> list[str]:
    """Every text Slack parses as mrkdwn (where `<!here>` would ping)."""
    if isinstance(value, list):
        return [text for item in value for text in _mrkdwn_texts(item)]
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" else []
        return own + [text for item in value.values() for text in _mrkdwn_texts(item)]
    return []


async def _answer(bot: RunningBot, text: str, **kwargs: Any) -> dict[str, Any]:
    """Run a command that must end in one ephemeral answer; returns the ack body."""
    ack = await bot.command(text, **kwargs)
    assert ack.status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
    await bot.slack.wait_idle(quiet_s=0.2)
    body: dict[str, Any] = ack.json()
    return body


async def test_query_posts_parent_and_one_reply_per_group_in_its_thread(bot: RunningBot) -> None:
    ack = await bot.command("acme/image_tagger")
    assert ack.status_code == 200
    assert ack.json()["response_type"] == "ephemeral"
    assert "Looking up the recent errors of acme/image_tagger" in ack.json()["text"]

    await bot.slack.wait_for(lambda s: len(s.messages) == 21)
    await bot.slack.wait_idle()
    (parent,) = bot.slack.top_level("C_GENERAL")
    assert parent.thread_ts is None
    link = f"<{bot.cluster.base_url}/algorithms/acme/image_tagger|acme/image_tagger>"
    assert f"*{link}*: 80 errors in 25 groups" in str(parent.blocks)  # the console's page
    assert "5 more not shown" in str(parent.blocks)
    replies = bot.slack.thread(parent.ts)
    assert len(replies) == 20
    assert all(reply.thread_ts == parent.ts for reply in replies)
    assert not any(reply.reply_broadcast for reply in replies)
    assert bot.slack.ephemerals == []
    assert bot.cluster.last_authorization == f"Simple {API_KEY}"
    # The posts go through connections kept open, not a new one (in production a TLS
    # handshake with Slack) for each.
    calls = bot.slack.calls
    assert len(calls) >= 21
    assert len({call.connection for call in calls}) <= 4


async def test_replies_are_newest_group_first_and_show_the_trace(bot: RunningBot) -> None:
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21)
    replies = [m for m in bot.slack.messages if m.thread_ts]
    labels = sample_bug_labels()
    # The sample's newest record is a Node rejection with no stack trace.
    first = replies[0]
    assert first.blocks[0]["text"]["text"] == "timeout"
    latest_ids = [
        re.search(r"latest request `([^`]+)`", str(m.blocks)).group(1)  # type: ignore[union-attr]
        for m in replies
    ]
    assert labels[latest_ids[0]] == "node-timeout-string-rejection"
    assert len({labels[request_id] for request_id in latest_ids}) == 20  # one reply per bug


async def test_a_long_trace_is_attached_in_full_to_the_thread(bot: RunningBot) -> None:
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21 and len(s.files) >= 1)
    await bot.slack.wait_idle()
    (parent,) = bot.slack.top_level("C_GENERAL")
    vitmatte = next(f for f in bot.slack.files if b"StageError" in f.content)
    assert vitmatte.thread_ts == parent.ts
    assert vitmatte.channel == "C_GENERAL"
    assert vitmatte.content.decode().count("\n") > 60  # the whole 65-line trace
    reply = next(m for m in bot.slack.thread(parent.ts) if "StageError" in m.text)
    assert "cut above" in str(reply.blocks)


async def test_error_text_cannot_ping_the_channel(bot: RunningBot) -> None:
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21)
    posted = _posted_text(bot.slack)
    assert "&lt;!here&gt; cc &lt;@U12345&gt;" in posted
    mrkdwn = [text for m in bot.slack.messages for text in _mrkdwn_texts(m.blocks)]
    assert any("&lt;!here&gt;" in text for text in mrkdwn)
    assert not any("<!here>" in text or "<@U12345>" in text for text in mrkdwn)
    assert not any("<!here>" in m.text for m in bot.slack.messages)


async def test_input_is_hidden_by_default(bot: RunningBot) -> None:
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21)
    assert "data://acme/uploads" not in _posted_text(bot.slack)


async def test_input_is_shown_with_show_input() -> None:
    async with running_bot(show_input=True) as bot:
        await bot.command("acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 21)
        assert "data://acme/uploads" in _posted_text(bot.slack)


async def test_query_by_uuid_uses_the_uuid_route(bot: RunningBot) -> None:
    await bot.command(f"id:{SAMPLE_UUID}")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21)
    assert ("GET", f"/v1/algorithms/{SAMPLE_UUID}/errors") in bot.cluster.requests
    assert f"id:{SAMPLE_UUID}" in bot.slack.messages[0].text


async def test_options_narrow_every_count(bot: RunningBot) -> None:
    await bot.command("acme/image_tagger type:ValueError")
    await bot.slack.wait_for(lambda s: len(s.messages) >= 1)
    await bot.slack.wait_idle()
    parent = bot.slack.messages[0]
    # ValueError: int() parsing (3), numpy broadcast (3), VitDet check inside StageError (3)
    assert "9 errors in 3 groups matching `type:ValueError`" in str(parent.blocks)
    assert len(bot.slack.thread(parent.ts)) == 3


async def test_public_channel_the_bot_is_not_in_is_joined(bot: RunningBot) -> None:
    await bot.command("acme/image_tagger", channel="C_OTHER")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21)
    (join,) = bot.slack.calls_to("conversations.join")
    assert join.params["channel"] == "C_OTHER"
    (parent,) = bot.slack.top_level("C_OTHER")
    assert len(bot.slack.thread(parent.ts)) == 20
    assert bot.slack.ephemerals == []


async def test_private_channel_gets_an_invite_hint_and_nothing_posted(bot: RunningBot) -> None:
    await _answer(bot, "acme/image_tagger", channel="G_PRIVATE")
    assert bot.slack.messages == []
    (answer,) = bot.slack.ephemerals
    assert "/invite" in answer.text
    assert "/algo-errors acme/image_tagger" in answer.text


@pytest.mark.parametrize(
    ("setup", "text", "expected"),
    [
        (lambda b: None, "acme/image_tager", "There is no algorithm *acme/image_tager*"),
        (
            lambda b: b.cluster.add_algorithm("acme", "quiet", records=[]),
            "acme/quiet",
            "No errors for *acme/quiet*",
        ),
        (
            lambda b: setattr(b.cluster, "down", True),
            "acme/image_tagger",
            "could not be reached",
        ),
        (
            lambda b: setattr(b.cluster, "errors_feature_enabled", False),
            "acme/image_tagger",
            "error logs are switched off",
        ),
        (
            lambda b: b.cluster.add_algorithm("acme", "secret", forbidden=True),
            "acme/secret",
            "may not read the errors of *acme/secret*",
        ),
        (
            lambda b: None,
            "id:00000000-0000-0000-0000-000000000000",
            "no algorithm has this id",
        ),
    ],
)
async def test_failures_and_no_errors_answer_ephemerally_and_post_nothing(
    bot: RunningBot, setup: Any, text: str, expected: str
) -> None:
    setup(bot)
    await _answer(bot, text)
    assert bot.slack.messages == []
    (answer,) = bot.slack.ephemerals
    assert expected in answer.text
    assert answer.response_type == "ephemeral"


async def test_bad_text_gets_usage_headed_by_the_problem(bot: RunningBot) -> None:
    ack = await bot.command("acme/image_tagger since:forever")
    assert ack.status_code == 200
    body = ack.json()
    assert body["response_type"] == "ephemeral"
    assert "`since:forever` is not a duration" in str(body["blocks"][0])
    assert "shows an Algorithmia algorithm's recent errors" in str(body["blocks"][1])
    await bot.slack.wait_idle(quiet_s=0.2)
    assert bot.slack.messages == []
    assert bot.cluster.requests == []


async def test_help_and_empty_text_answer_with_usage(bot: RunningBot) -> None:
    for text in ("", "help"):
        body = (await bot.command(text)).json()
        assert "`/algo-errors owner/name`" in str(body["blocks"])
    assert bot.cluster.requests == []


async def test_bad_signature_and_stale_timestamp_are_rejected(bot: RunningBot) -> None:
    bad = await bot.command("acme/image_tagger", secret="not-the-secret")
    stale = await bot.command("acme/image_tagger", timestamp=int(time.time()) - 600)
    assert (bad.status_code, stale.status_code) == (401, 401)
    await bot.slack.wait_idle(quiet_s=0.2)
    assert bot.slack.messages == []
    assert bot.cluster.requests == []


async def test_healthz_and_metrics(bot: RunningBot) -> None:
    health = await bot.http.get(f"{bot.url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    await _answer(bot, "acme/image_tager")
    await bot.command("acme/x since:soon")
    metrics = await bot.http.get(f"{bot.url}/metrics")
    assert metrics.status_code == 200
    assert 'algo_errors_commands_total{command="query",outcome="refused"} 1.0' in metrics.text
    assert 'algo_errors_commands_total{command="usage",outcome="refused"} 1.0' in metrics.text
    # The errors call, then the algorithm itself: no such algorithm, or no error log?
    assert 'algo_errors_cluster_requests_total{outcome="not_found"} 2.0' in metrics.text


async def test_against_slack_s_own_pace_and_late_file_shares_replies_keep_their_order() -> None:
    slack = SlackStandIn(
        rate_limit=RateLimit(burst=3, per_second=1.0, speed=200.0),
        async_file_shares=True,
        seed=7,
    )
    async with slack, running_bot(slack=slack) as bot:
        await bot.command("acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 21, timeout=20)
        await bot.slack.wait_idle()
        (parent,) = bot.slack.top_level("C_GENERAL")
        replies = bot.slack.thread(parent.ts)
        assert len(replies) == 20
        assert [r.ts for r in replies] == sorted(r.ts for r in replies)
        assert len({r.text for r in replies}) == 20  # each group once, newest first as posted
        # Each post accepted exactly once: a 429 at the bucket's edge (the test clock's margin
        # is a millisecond) is waited out and sent again, never dropped nor doubled.
        posts = bot.slack.calls_to("chat.postMessage")
        assert len([c for c in posts if c.status == 200]) == 21
        assert {c.status for c in posts} <= {200, 429}
        assert bot.slack.files  # the long traces' files
        for file in bot.slack.files:  # late and in any order, each names its group
            request_id = file.title.split(":", 1)[0].removeprefix("Trace of ")
            owner = next(r for r in replies if request_id in str(r.blocks))
            assert file.title.split(": ", 1)[1][:40] in owner.text


async def test_a_query_and_a_digest_read_and_render_at_the_process_s_turns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The served bot's heavy steps take the process's turns (see `bot.usecases.turns`), so
    the requests that arrive while fifty answers are read are answered between them: a query
    takes one to begin its work, one to read the records and one to render its answer; a
    digest run one to read each subscription's new records."""
    taken: list[int] = []
    take = CpuTurns.take

    async def counted(turns: CpuTurns) -> None:
        taken.append(id(turns))
        await take(turns)

    monkeypatch.setattr(CpuTurns, "take", counted)
    async with running_bot() as bot:
        await bot.command("acme/image_tagger")
        await bot.settled()
        assert len(taken) == 3
        await bot.command("subscribe acme/image_tagger")
        await bot.settled()
        assert len(taken) == 4  # its work's beginning; what it has seen is not read at a turn
        news = fresh_record("py-notify-channel-id-int", int(time.time() * 1000))
        bot.cluster.append_records("acme", "image_tagger", [news])
        report = await bot.digest()
        assert report.posted >= 1
        assert len(taken) == 5
    assert len(set(taken)) == 1  # one for the process: the queries' and the digests'
