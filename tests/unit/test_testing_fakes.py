"""The shipped fakes answer like the platforms they stand in for, as Slack and Algorithmia
document them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.scopes import BOT_SCOPES, METHOD_SCOPES
from bot.testing.sample_cluster import (
    DEFAULT_AUTHORIZATION,
    MAX_RECORDS,
    SAMPLE_ALGORITHM_ID,
    SAMPLE_NAME,
    SAMPLE_OWNER,
    WINDOW_MS,
    SampleCluster,
    sample_bug_labels,
    sample_records,
)
from bot.testing.slack_access import PostRateLimits
from bot.testing.slack_stand_in import RateLimit, SlackStandIn
from bot.testing.transcript import render_blocks, render_conversation

NOW_MS = 1_764_000_000_000
HOUR_MS = 60 * 60 * 1000
AUTH = {"Authorization": DEFAULT_AUTHORIZATION}
UUID = "0f0e0d0c-0b0a-4909-8807-060504030201"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    """The methods' behaviour, faster than Slack's pace and with files shared at once (both
    are tested apart)."""
    async with SlackStandIn(
        archived=("C_OLD",),
        users={"U_NYC": "America/New_York"},
        rate_limit=None,
        async_file_shares=False,
    ) as stand_in:
        yield stand_in


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.base_url)


@pytest.fixture
async def cluster() -> AsyncIterator[SampleCluster]:
    async with SampleCluster(clock_ms=lambda: NOW_MS) as sample_cluster:
        yield sample_cluster


@pytest.fixture
async def http(cluster: SampleCluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.base_url) as http_client:
        yield http_client


def _record(request_id: str, created_at: int) -> dict[str, Any]:
    return {"created_at": created_at, "request_id": request_id, "error": "error:\nboom"}


# -- Slack stand-in ------------------------------------------------------------------------


async def test_auth_test_names_the_bot_and_requires_a_token(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    response = await client.auth_test()
    assert (response["user_id"], response["bot_id"], response["team_id"]) == (
        "UBOT",
        "BBOT",
        "T0001",
    )
    assert response["user"] == "algo-errors"

    with pytest.raises(SlackApiError) as refused:
        await AsyncWebClient(base_url=slack.base_url).auth_test()
    assert refused.value.response["error"] == "not_authed"
    assert [call.method for call in slack.calls] == ["auth.test", "auth.test"]


async def test_thread_replies_need_a_top_level_parent_in_the_channel(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="C_GENERAL", text="3 errors")
    reply = await client.chat_postMessage(
        channel="C_GENERAL", text="regressed", thread_ts=parent["ts"], reply_broadcast=True
    )
    assert float(reply["ts"]) > float(parent["ts"])
    for bad_parent, channel in ((reply["ts"], "C_GENERAL"), ("1.000000", "C_GENERAL")):
        with pytest.raises(SlackApiError) as refused:
            await client.chat_postMessage(channel=channel, text="x", thread_ts=bad_parent)
        assert refused.value.response["error"] == "thread_not_found"

    assert [m.text for m in slack.top_level("C_GENERAL")] == ["3 errors"]
    (posted_reply,) = slack.thread(parent["ts"])
    assert posted_reply.thread_ts == parent["ts"]
    assert posted_reply.reply_broadcast is True


async def test_chat_update_replaces_the_content_and_keeps_history(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "count 1"}}]
    parent = await client.chat_postMessage(channel="C_GENERAL", text="count 1", blocks=blocks)
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "count 2"}}]
    await client.chat_update(
        channel="C_GENERAL", ts=parent["ts"], text="count 2", blocks=new_blocks
    )

    (message,) = slack.messages
    assert (message.text, message.blocks) == ("count 2", new_blocks)
    assert [update["text"] for update in message.updates] == ["count 2"]
    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel="C_GENERAL", ts="1.000000", text="x")
    assert refused.value.response["error"] == "message_not_found"


async def test_posting_where_the_bot_is_not_a_member(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C_OTHER", text="hello")
    assert refused.value.response["error"] == "not_in_channel"
    joined = await client.conversations_join(channel="C_OTHER")
    assert joined.get("warning") is None
    await client.chat_postMessage(channel="C_OTHER", text="hello")
    again = await client.conversations_join(channel="C_OTHER")
    assert again["warning"] == "already_in_channel"
    assert [m.channel for m in slack.messages] == ["C_OTHER"]

    expected = {
        ("chat_postMessage", "G_PRIVATE"): "channel_not_found",
        ("chat_postMessage", "C_OLD"): "is_archived",
        ("chat_postMessage", "C_NOPE"): "channel_not_found",
        ("conversations_join", "G_PRIVATE"): "method_not_supported_for_channel_type",
        ("conversations_join", "C_OLD"): "is_archived",
        ("conversations_join", "C_NOPE"): "channel_not_found",
    }
    for (method, channel), error in expected.items():
        kwargs: dict[str, Any] = {"channel": channel}
        if method == "chat_postMessage":
            kwargs["text"] = "hello"
        with pytest.raises(SlackApiError) as refused:
            await getattr(client, method)(**kwargs)
        assert refused.value.response.status_code == 200
        assert refused.value.response["error"] == error, (method, channel)


async def test_conversations_info_and_users_info(client: AsyncWebClient) -> None:
    assert (await client.users_info(user="U_ANY"))["user"]["tz"] == "Europe/Berlin"
    assert (await client.users_info(user="U_NYC"))["user"]["tz"] == "America/New_York"
    # Without channels:read / groups:read, Slack refuses conversations.info, each by its kind.
    without = [s for s in BOT_SCOPES if s not in ("channels:read", "groups:read")]
    async with SlackStandIn(scopes=without) as blind:
        blinded = AsyncWebClient(token="xoxb-test", base_url=blind.base_url)
        for channel, needed in (("C_OTHER", "channels:read"), ("G_PRIVATE", "groups:read")):
            with pytest.raises(SlackApiError) as refused:
                await blinded.conversations_info(channel=channel)
            assert refused.value.response["error"] == "missing_scope"
            assert refused.value.response["needed"] == needed

    async with SlackStandIn(scopes=(*without, "channels:read")) as reader:
        reading = AsyncWebClient(token="xoxb-test", base_url=reader.base_url)
        info = await reading.conversations_info(channel="C_OTHER")
        assert info["channel"]["is_member"] is False
        assert info["channel"]["is_private"] is False
        with pytest.raises(SlackApiError) as refused:
            await reading.conversations_info(channel="G_PRIVATE")
        assert refused.value.response["needed"] == "groups:read"


async def test_files_upload_v2_end_to_end_into_a_thread(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="C_GENERAL", text="parent")
    response = await client.files_upload_v2(
        channel="C_GENERAL", content="trace", filename="trace.txt", thread_ts=parent["ts"]
    )

    (uploaded,) = slack.files
    assert response["file"]["id"] == uploaded.file_id
    assert (uploaded.filename, uploaded.content) == ("trace.txt", b"trace")
    assert (uploaded.channel, uploaded.thread_ts) == ("C_GENERAL", parent["ts"])
    assert [c.method for c in slack.calls][1:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


async def test_rate_limit_answers_429_with_retry_after(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel="C_GENERAL", text="hello")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "1"
    assert limited.value.response["error"] == "ratelimited"
    assert slack.messages == []

    slack.fail_next("chat.postMessage", error="msg_too_long")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C_GENERAL", text="hello")
    assert refused.value.response["error"] == "msg_too_long"
    await client.chat_postMessage(channel="C_GENERAL", text="hello")
    assert len(slack.messages) == 1


async def test_response_url_records_the_ephemeral_reply(slack: SlackStandIn) -> None:
    webhook = AsyncWebhookClient(url=slack.response_url("query"))
    response = await webhook.send(text="No errors in 7 days", replace_original=True)
    assert (response.status_code, response.body) == (200, "ok")
    (ephemeral,) = slack.ephemerals
    assert (ephemeral.via, ephemeral.text, ephemeral.replace_original) == (
        "response_url",
        "No errors in 7 days",
        True,
    )
    assert ephemeral.response_name == "query"


async def test_wait_for_reports_what_slack_received(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel="C_GENERAL", text="only this")
    await slack.wait_for(lambda s: len(s.messages) == 1, timeout=0.5)
    with pytest.raises(AssertionError, match=r"chat\.postMessage .*only this"):
        await slack.wait_for(lambda s: len(s.messages) == 2, timeout=0.05)
    await slack.wait_idle(quiet_s=0.02, timeout=1.0)


# -- Slack stand-in: scopes, rate limits, asynchronous file shares (reference §7) ----------


async def test_the_stand_in_grants_the_manifest_scopes_and_reports_them(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    auth = await client.auth_test()
    assert auth.headers["x-oauth-scopes"] == ",".join(BOT_SCOPES)
    posted = await client.chat_postMessage(channel="C_GENERAL", text="hi")
    assert posted.headers["x-oauth-scopes"] == ",".join(BOT_SCOPES)
    assert posted.headers["x-accepted-oauth-scopes"] == "chat:write"
    # Every method the stand-in serves has its scopes on record.
    assert set(slack._methods()) == set(METHOD_SCOPES)


async def test_a_call_the_granted_scopes_do_not_allow_is_refused_with_missing_scope() -> None:
    granted = ("commands", "chat:write", "channels:history")
    async with SlackStandIn(scopes=granted) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        assert (await client.auth_test()).headers["x-oauth-scopes"] == ",".join(granted)
        await client.chat_postMessage(channel="C_GENERAL", text="allowed")
        refused_calls: list[tuple[str, dict[str, Any], str]] = [
            ("conversations_join", {"channel": "C_OTHER"}, "channels:join"),
            ("users_info", {"user": "U_ANY"}, "users:read"),
            (
                "files_upload_v2",
                {"channel": "C_GENERAL", "content": "x", "filename": "x.txt"},
                "files:write",
            ),
            # Private channels take the private kind's scope, even where the public one is granted.
            ("conversations_history", {"channel": "G_PRIVATE"}, "groups:history"),
            ("conversations_replies", {"channel": "G_PRIVATE", "ts": "1.0"}, "groups:history"),
        ]
        for method, kwargs, needed in refused_calls:
            with pytest.raises(SlackApiError) as refused:
                await getattr(client, method)(**kwargs)
            assert refused.value.response.status_code == 200
            assert refused.value.response.data == {
                "ok": False,
                "error": "missing_scope",
                "needed": needed,
                "provided": "commands,chat:write,channels:history",
            }, method
        history = await client.conversations_history(channel="C_GENERAL")

        assert [m["text"] for m in history["messages"]] == ["allowed"]
        assert "C_OTHER" not in slack.members
        assert (slack.files, slack._uploads) == ([], {})
        refusals = [c for c in slack.calls if c.response.get("error") == "missing_scope"]
        assert [(c.method, c.status) for c in refusals] == [
            ("conversations.join", 200),
            ("users.info", 200),
            ("files.getUploadURLExternal", 200),
            ("conversations.history", 200),
            ("conversations.replies", 200),
        ]


async def test_a_block_id_may_repeat_across_messages_but_not_within_one(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    blocks = [{**_section("one"), "block_id": "summary"}, {"type": "divider", "block_id": "end"}]
    first = await client.chat_postMessage(channel="C_GENERAL", text="1", blocks=blocks)
    await client.chat_postMessage(channel="C_GENERAL", text="2", blocks=blocks)
    twice = [*blocks, {**_section("two"), "block_id": "summary"}]
    for method, kwargs in (
        ("chat_postMessage", {}),
        ("chat_update", {"ts": first["ts"]}),
        ("chat_postEphemeral", {"user": "U_ALICE"}),
    ):
        with pytest.raises(SlackApiError) as refused:
            await getattr(client, method)(channel="C_GENERAL", text="3", blocks=twice, **kwargs)
        assert refused.value.response["error"] == "invalid_blocks", method
        assert refused.value.response["errors"] == [
            "duplicate block_id, already used by block 0 [json-pointer:/blocks/2/block_id]"
        ]
    assert [m.blocks for m in slack.messages] == [blocks, blocks]
    assert slack.ephemerals == []


async def test_rate_limit_answers_429_when_a_channels_bucket_is_empty() -> None:
    limit = RateLimit(burst=2, per_second=1.0, speed=10.0)
    async with SlackStandIn(member_of=("C_GENERAL", "C_OTHER"), rate_limit=limit) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        for text in ("1", "2"):
            await client.chat_postMessage(channel="C_GENERAL", text=text)
        with pytest.raises(SlackApiError) as limited:
            await client.chat_postMessage(channel="C_GENERAL", text="3")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "1"
        assert limited.value.response.data == {"ok": False, "error": "ratelimited"}
        # Each channel has its own bucket; other methods are not limited.
        await client.chat_postMessage(channel="C_OTHER", text="elsewhere")
        await client.chat_update(channel="C_GENERAL", ts=slack.messages[0].ts, text="1b")

        await asyncio.sleep(int(limited.value.response.headers["Retry-After"]) / limit.speed)
        await client.chat_postMessage(channel="C_GENERAL", text="3")

        assert [m.text for m in slack.top_level("C_GENERAL")] == ["1b", "2", "3"]
        assert [(c.params["text"], c.status) for c in slack.calls_to("chat.postMessage")] == [
            ("1", 200),
            ("2", 200),
            ("3", 429),
            ("elsewhere", 200),
            ("3", 200),
        ]
        assert slack.calls_to("chat.postMessage")[2].response["error"] == "ratelimited"


def test_the_post_bucket_answers_retry_after_in_whole_slack_seconds() -> None:
    now = [100.0]
    buckets = PostRateLimits(RateLimit(burst=1, per_second=0.5, speed=4.0), clock=lambda: now[0])

    assert buckets.take("C1") is None
    assert buckets.take("C1") == 2  # one post per 2 s of Slack time
    assert buckets.take("C2") is None
    now[0] += 0.4  # 1.6 s of Slack time: 0.8 of a token
    assert buckets.take("C1") == 1  # never under 1
    now[0] += 0.2
    assert buckets.take("C1") is None
    assert buckets.take("C1") == 2
    with pytest.raises(ValueError, match="burst"):
        RateLimit(burst=0)


async def _shares_in_order(seed: int) -> list[str]:
    """Upload four files at once into a thread; the order Slack shares them in."""
    async with SlackStandIn(async_file_shares=True, seed=seed) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        parent = await client.chat_postMessage(channel="C_GENERAL", text="parent")
        uploads = [{"content": f"trace {n}", "filename": f"f{n}.txt"} for n in range(4)]
        completed = await client.files_upload_v2(
            file_uploads=uploads, channel="C_GENERAL", thread_ts=parent["ts"]
        )
        assert [f["name"] for f in completed["files"]] == ["f0.txt", "f1.txt", "f2.txt", "f3.txt"]
        # files.completeUploadExternal has answered; Slack has shared nothing yet.
        assert (slack.files, slack.pending_shares) == ([], 4)
        before = await client.conversations_replies(channel="C_GENERAL", ts=parent["ts"])
        assert [m["text"] for m in before["messages"]] == ["parent"]

        await slack.wait_idle(quiet_s=0.01, timeout=2.0)

        assert slack.pending_shares == 0
        thread = await client.conversations_replies(channel="C_GENERAL", ts=parent["ts"])
        shared = [m["files"][0]["name"] for m in thread["messages"][1:]]
        assert shared == [f.filename for f in slack.files]
        assert [f.ts for f in slack.files] == sorted(f.ts for f in slack.files)
        assert all(f.thread_ts == parent["ts"] for f in slack.files)
        return shared


async def test_async_file_shares_land_later_in_a_seeded_order() -> None:
    order = await _shares_in_order(seed=53)

    assert sorted(order) == ["f0.txt", "f1.txt", "f2.txt", "f3.txt"]
    assert order != sorted(order), "the shares land in another order than the uploads"
    assert await _shares_in_order(seed=53) == order
    assert await _shares_in_order(seed=0) != order


async def test_file_shares_are_late_by_default_and_immediate_when_asked(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    await client.files_upload_v2(channel="C_GENERAL", content="x", filename="x.txt")
    assert ([f.filename for f in slack.files], slack.pending_shares) == (["x.txt"], 0)
    async with SlackStandIn() as like_slack:
        late = AsyncWebClient(token="xoxb-test", base_url=like_slack.base_url)
        await late.files_upload_v2(channel="C_GENERAL", content="x", filename="x.txt")
        assert (like_slack.files, like_slack.pending_shares) == ([], 1)
        await like_slack.wait_for(lambda s: len(s.files) == 1)


# -- Slack stand-in: message metadata, history and held answers (reference §7) -------------

ALERT_METADATA = {"event_type": "error_alert", "event_payload": {"fingerprint": "f1", "count": 3}}


async def test_post_message_keeps_metadata_sent_as_json_or_as_a_form_string(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C_GENERAL", text="a", metadata=ALERT_METADATA)
    assert posted["message"]["metadata"] == ALERT_METADATA
    form = await client.api_call(
        "chat.postMessage",
        data={"channel": "C_GENERAL", "text": "b", "metadata": json.dumps(ALERT_METADATA)},
    )
    assert form["message"]["metadata"] == ALERT_METADATA
    plain = await client.chat_postMessage(channel="C_GENERAL", text="c")
    assert "metadata" not in plain["message"]
    assert [m.metadata for m in slack.messages] == [ALERT_METADATA, ALERT_METADATA, None]

    for bad in (
        {"event_payload": {}},
        {"event_type": 3, "event_payload": {}},
        {"event_type": "error_alert", "event_payload": [1]},
        {"event_type": "error_alert"},
        "not json",
        ["error_alert"],
    ):
        body: dict[str, Any] = {"channel": "C_GENERAL", "text": "x", "metadata": bad}
        with pytest.raises(SlackApiError) as refused:
            await client.api_call("chat.postMessage", json=body)
        assert refused.value.response["error"] == "invalid_metadata_format", bad
    assert len(slack.messages) == 3

    updated = {"event_type": "error_alert", "event_payload": {"fingerprint": "f1", "count": 4}}
    await client.chat_update(channel="C_GENERAL", ts=posted["ts"], text="a2", metadata=updated)
    assert slack.messages[0].metadata == updated


async def _history_fixture(client: AsyncWebClient) -> dict[str, str]:
    """A channel with a thread (a reply, a broadcast reply, a file), a file and two more posts."""
    ts: dict[str, str] = {}
    ts["parent"] = (
        await client.chat_postMessage(channel="C_GENERAL", text="parent", metadata=ALERT_METADATA)
    )["ts"]
    ts["reply"] = (
        await client.chat_postMessage(channel="C_GENERAL", text="reply", thread_ts=ts["parent"])
    )["ts"]
    ts["broadcast"] = (
        await client.chat_postMessage(
            channel="C_GENERAL", text="broadcast", thread_ts=ts["parent"], reply_broadcast=True
        )
    )["ts"]
    await client.files_upload_v2(
        channel="C_GENERAL", content="trace", filename="trace.txt", thread_ts=ts["parent"]
    )
    await client.files_upload_v2(channel="C_GENERAL", content="log", filename="log.txt")
    ts["second"] = (await client.chat_postMessage(channel="C_GENERAL", text="second"))["ts"]
    ts["third"] = (await client.chat_postMessage(channel="C_GENERAL", text="third"))["ts"]
    await client.conversations_join(channel="C_OTHER")
    await client.chat_postMessage(channel="C_OTHER", text="elsewhere")
    return ts


async def test_conversations_history_lists_top_level_messages_newest_first(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    ts = await _history_fixture(client)
    trace, log = slack.files

    history = await client.conversations_history(channel="C_GENERAL")
    assert [(m["ts"], m["text"]) for m in history["messages"]] == [
        (ts["third"], "third"),
        (ts["second"], "second"),
        (log.ts, ""),
        (ts["broadcast"], "broadcast"),
        (ts["parent"], "parent"),
    ]
    assert history["has_more"] is False
    assert "response_metadata" not in history
    third, _, log_share, broadcast, parent = history["messages"]
    assert (third["type"], third["bot_id"], third["blocks"]) == ("message", "BBOT", [])
    assert "thread_ts" not in third
    assert log_share["files"] == [{"id": log.file_id, "name": "log.txt", "title": "log.txt"}]
    assert (broadcast["subtype"], broadcast["thread_ts"]) == ("thread_broadcast", ts["parent"])
    assert (parent["thread_ts"], parent["reply_count"], parent["latest_reply"]) == (
        ts["parent"],
        3,
        trace.ts,
    )
    assert "metadata" not in parent

    with_metadata = await client.conversations_history(
        channel="C_GENERAL", include_all_metadata=True, oldest=ts["parent"], inclusive=True
    )
    assert with_metadata["messages"][-1]["metadata"] == ALERT_METADATA
    between = await client.conversations_history(
        channel="C_GENERAL", oldest=ts["parent"], latest=ts["third"]
    )
    assert [m["text"] for m in between["messages"]] == ["second", "", "broadcast"]
    assert between["latest"] == ts["third"]
    inclusive = await client.conversations_history(
        channel="C_GENERAL", oldest=ts["second"], latest=ts["third"], inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]] == ["third", "second"]


async def test_conversations_history_pages_with_a_cursor_and_needs_membership(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.conversations_history(channel="C_OTHER")
    assert refused.value.response["error"] == "not_in_channel"
    await _history_fixture(client)
    texts: list[str] = []
    pages: list[bool] = []
    cursor: str | None = None
    while True:
        page = await client.conversations_history(channel="C_GENERAL", limit=2, cursor=cursor)
        texts += [m["text"] for m in page["messages"]]
        pages.append(page["has_more"])
        cursor = page.get("response_metadata", {}).get("next_cursor")
        if not cursor:
            break
    assert texts == ["third", "second", "", "broadcast", "parent"]
    assert pages == [True, True, False]

    for channel, error in (
        ("C_NOPE", "channel_not_found"),
        ("G_PRIVATE", "channel_not_found"),
        ("C_OLD", "not_in_channel"),
    ):
        with pytest.raises(SlackApiError) as refused:
            await client.conversations_history(channel=channel)
        assert refused.value.response["error"] == error, channel
    for kwargs, error in (
        ({"cursor": "bm9wZQ=="}, "invalid_cursor"),
        ({"oldest": "yesterday"}, "invalid_ts_oldest"),
        ({"latest": "soon"}, "invalid_ts_latest"),
    ):
        with pytest.raises(SlackApiError) as refused:
            await client.conversations_history(channel="C_GENERAL", **kwargs)
        assert refused.value.response["error"] == error
    joined = await client.conversations_history(channel="C_OTHER")
    assert [m["text"] for m in joined["messages"]] == ["elsewhere"]


async def test_conversations_replies_gives_the_parent_then_replies_and_shared_files(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    ts = await _history_fixture(client)
    trace, _ = slack.files

    thread = await client.conversations_replies(
        channel="C_GENERAL", ts=ts["parent"], include_all_metadata=True
    )
    assert [(m["ts"], m["text"]) for m in thread["messages"]] == [
        (ts["parent"], "parent"),
        (ts["reply"], "reply"),
        (ts["broadcast"], "broadcast"),
        (trace.ts, ""),
    ]
    parent, reply, _, file_share = thread["messages"]
    assert (parent["reply_count"], parent["metadata"]) == (3, ALERT_METADATA)
    assert (reply["thread_ts"], reply["parent_user_id"]) == (ts["parent"], "UBOT")
    assert file_share["files"] == [{"id": trace.file_id, "name": "trace.txt", "title": "trace.txt"}]
    assert file_share["thread_ts"] == ts["parent"]
    assert thread["has_more"] is False

    first = await client.conversations_replies(channel="C_GENERAL", ts=ts["parent"], limit=2)
    assert [m["text"] for m in first["messages"]] == ["parent", "reply"]
    assert first["has_more"] is True
    rest = await client.conversations_replies(
        channel="C_GENERAL",
        ts=ts["parent"],
        limit=2,
        cursor=first["response_metadata"]["next_cursor"],
    )
    assert [m["ts"] for m in rest["messages"]] == [ts["broadcast"], trace.ts]
    assert rest["has_more"] is False
    newer = await client.conversations_replies(
        channel="C_GENERAL", ts=ts["parent"], oldest=ts["reply"]
    )
    assert [m["text"] for m in newer["messages"]] == ["parent", "broadcast", ""]
    alone = await client.conversations_replies(channel="C_GENERAL", ts=ts["reply"])
    assert [m["text"] for m in alone["messages"]] == ["reply"]
    unthreaded = await client.conversations_replies(channel="C_GENERAL", ts=ts["second"])
    assert [m["text"] for m in unthreaded["messages"]] == ["second"]
    assert "reply_count" not in unthreaded["messages"][0]

    for channel, thread_ts, error in (
        ("C_GENERAL", "1.000000", "thread_not_found"),
        ("C_OTHER", ts["parent"], "thread_not_found"),
        ("G_PRIVATE", ts["parent"], "channel_not_found"),
    ):
        with pytest.raises(SlackApiError) as refused:
            await client.conversations_replies(channel=channel, ts=thread_ts)
        assert refused.value.response["error"] == error


async def test_a_held_answer_waits_while_slack_keeps_the_message(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    held = slack.hold("chat.postMessage")
    posting = asyncio.create_task(client.chat_postMessage(channel="C_GENERAL", text="kept"))
    call = await held.arrived(timeout=2.0)
    (message,) = slack.messages
    assert (message.text, call.response["ts"]) == ("kept", message.ts)
    await slack.wait_idle(quiet_s=0.02, timeout=1.0)
    assert not posting.done()

    other = await client.chat_postMessage(channel="C_GENERAL", text="not held")
    held.release()
    answer = await posting
    assert answer["ts"] == message.ts
    assert float(other["ts"]) > float(answer["ts"])
    assert held.released


async def test_a_held_answer_whose_client_is_gone_breaks_nothing(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    held = slack.hold("chat.postMessage")
    posting = asyncio.create_task(client.chat_postMessage(channel="C_GENERAL", text="orphan"))
    await held.arrived(timeout=2.0)
    posting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await posting
    held.release()
    await slack.wait_idle(quiet_s=0.05, timeout=2.0)

    history = await client.conversations_history(channel="C_GENERAL")
    assert [m["text"] for m in history["messages"]] == ["orphan"]
    with pytest.raises(AssertionError, match=r"no chat\.update call arrived"):
        await slack.hold("chat.update").arrived(timeout=0.05)


async def test_a_hold_left_open_is_released_when_the_stand_in_stops() -> None:
    async with SlackStandIn() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        held = slack.hold("chat.postMessage")
        posting = asyncio.create_task(client.chat_postMessage(channel="C_GENERAL", text="late"))
        await held.arrived(timeout=2.0)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 0.5
    assert (await posting)["message"]["text"] == "late"


# -- Slack stand-in: what Slack refuses (Slack's documented limits) ----------


def _section(text: str, kind: str = "mrkdwn") -> dict[str, Any]:
    return {"type": "section", "text": {"type": kind, "text": text}}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def _button(text: str = "Resolve", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": _plain(text), "action_id": "resolve", **extra}


def _select(*options: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "static_select",
        "action_id": "mute",
        "placeholder": _plain("Mute…"),
        "options": [{"text": _plain(text), "value": value} for text, value in options],
    }


def _rich(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich_text", "elements": list(parts)}


def _pre(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich_text_preformatted", "elements": list(runs)}


def _context(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "context", "elements": list(elements)}


VALID_BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": _plain("KeyError"), "block_id": "h" * 255},
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*3* errors"},
        "fields": [{"type": "mrkdwn", "text": f"*{n}*"} for n in range(10)],
    },
    {"type": "section", "fields": [_plain("fields only")]},
    _context(*[{"type": "mrkdwn", "text": f"v{n}"} for n in range(9)], _plain("plain")),
    _context({"type": "image", "image_url": "https://x/i.png", "alt_text": "i"}),
    _rich(
        {"type": "rich_text_section", "elements": [{"type": "text", "text": "Trace"}]},
        _pre({"type": "text", "text": "line 1\nline 2"}),
    ),
    {"type": "divider"},
    _actions(
        _button("R" * 75, value="v" * 2000, action_id="a" * 255),
        _select(("O" * 75, "v" * 150), *[(f"o{n}", f"{n}") for n in range(99)]),
    ),
    _actions(*[_button(f"b{n}") for n in range(25)]),
]

# Each message below meets a limit exactly, so Slack takes it.
AT_THE_LIMITS: list[tuple[str, list[dict[str, Any]]]] = [
    ("x" * 40_000, []),
    ("50 blocks", [{"type": "divider"}] * 50),
    ("header", [{"type": "header", "text": _plain("h" * 150)}]),
    ("section", [_section("s" * 3000)]),
    ("fields", [{"type": "section", "fields": [_plain("f" * 2000)] * 5}]),
    ("12,000 block characters", [_section("s" * 3000)] * 4),
]

# (text, blocks, error, where): each message breaks one rule of §7 or §8.
REFUSED: dict[str, tuple[str, list[dict[str, Any]], str, str]] = {
    "51 blocks": ("x", [{"type": "divider"}] * 51, "invalid_blocks", "/blocks]"),
    "unknown block type": ("x", [{"type": "carousel"}], "invalid_blocks", "/blocks/0/type"),
    "block_id over 255": (
        "x",
        [{"type": "divider", "block_id": "b" * 256}],
        "invalid_blocks",
        "/blocks/0/block_id",
    ),
    "action_id over 255": (
        "x",
        [_actions(_button(action_id="a" * 256))],
        "invalid_blocks",
        "/blocks/0/elements/0/action_id",
    ),
    "mrkdwn header": (
        "x",
        [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
        "invalid_blocks",
        "/blocks/0/text]",
    ),
    "header over 150": (
        "x",
        [{"type": "header", "text": _plain("h" * 151)}],
        "invalid_blocks",
        "/blocks/0/text/text",
    ),
    "blank header": (
        "x",
        [{"type": "header", "text": _plain(" ")}],
        "invalid_blocks",
        "/blocks/0/text/text",
    ),
    "section without text or fields": (
        "x",
        [{"type": "section"}],
        "invalid_blocks",
        "/blocks/0]",
    ),
    "empty section text": ("x", [_section("")], "invalid_blocks", "/blocks/0/text/text"),
    "blank section text": ("x", [_section(" \n ")], "invalid_blocks", "/blocks/0/text/text"),
    "section text over 3000": (
        "x",
        [_section("s" * 3001)],
        "invalid_blocks",
        "/blocks/0/text/text",
    ),
    "11 fields": (
        "x",
        [{"type": "section", "fields": [_plain("f")] * 11}],
        "invalid_blocks",
        "/blocks/0/fields]",
    ),
    "field over 2000": (
        "x",
        [{"type": "section", "fields": [_plain("f" * 2001)]}],
        "invalid_blocks",
        "/blocks/0/fields/0/text",
    ),
    "blank field": (
        "x",
        [{"type": "section", "fields": [_plain("ok"), {"type": "mrkdwn", "text": "\t"}]}],
        "invalid_blocks",
        "/blocks/0/fields/1/text",
    ),
    "text object of another type": (
        "x",
        [_section("*3*", kind="markdown")],
        "invalid_blocks",
        "/blocks/0/text]",
    ),
    "empty context": ("x", [_context()], "invalid_blocks", "/blocks/0/elements]"),
    "11 context elements": (
        "x",
        [_context(*[_plain("c")] * 11)],
        "invalid_blocks",
        "/blocks/0/elements]",
    ),
    "blank context element": (
        "x",
        [_context(_plain("v1"), {"type": "mrkdwn", "text": " "})],
        "invalid_blocks",
        "/blocks/0/elements/1/text",
    ),
    "empty actions": ("x", [_actions()], "invalid_blocks", "/blocks/0/elements]"),
    "26 actions": (
        "x",
        [_actions(*[_button()] * 26)],
        "invalid_blocks",
        "/blocks/0/elements]",
    ),
    "button text over 75": (
        "x",
        [_actions(_button("b" * 76))],
        "invalid_blocks",
        "/blocks/0/elements/0/text/text",
    ),
    "button value over 2000": (
        "x",
        [_actions(_button(value="v" * 2001))],
        "invalid_blocks",
        "/blocks/0/elements/0/value",
    ),
    "101 options": (
        "x",
        [_actions(_select(*[(f"o{n}", f"{n}") for n in range(101)]))],
        "invalid_blocks",
        "/blocks/0/elements/0/options]",
    ),
    "option text over 75": (
        "x",
        [_actions(_select(("o" * 76, "1")))],
        "invalid_blocks",
        "/blocks/0/elements/0/options/0/text/text",
    ),
    "option value over 150": (
        "x",
        [_actions(_select(("o", "v" * 151)))],
        "invalid_blocks",
        "/blocks/0/elements/0/options/0/value",
    ),
    "empty rich_text": ("x", [_rich()], "invalid_blocks", "/blocks/0/elements]"),
    "duplicate block_id": (
        "x",
        [{"type": "divider", "block_id": "b"}, {**_section("s"), "block_id": "b"}],
        "invalid_blocks",
        "/blocks/1/block_id",
    ),
    "empty preformatted": (
        "x",
        [_rich(_pre())],
        "invalid_blocks",
        "/blocks/0/elements/0/elements]",
    ),
    "empty rich_text_section": (
        "x",
        [_rich({"type": "rich_text_section", "elements": []})],
        "invalid_blocks",
        "/blocks/0/elements/0/elements]",
    ),
    "empty text run": (
        "x",
        [_rich(_pre({"type": "text", "text": "a"}, {"type": "text", "text": ""}))],
        "invalid_blocks",
        "/blocks/0/elements/0/elements/1/text",
    ),
    "over 12,000 block characters": (
        "x",
        [_section("s" * 3000)] * 4 + [_context(_plain("c"))],
        "msg_blocks_too_long",
        "12001",
    ),
    "text over 40,000": ("x" * 40_001, [], "msg_too_long", "40001"),
    "no text and no blocks": ("", [], "no_text", ""),
}


def _message(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat.* body with only the fields given, as a bot that leaves `text` out sends it."""
    return {
        **({"text": text} if text else {}),
        **({"blocks": blocks} if blocks else {}),
    }


async def test_a_message_within_every_limit_is_taken_everywhere(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C_GENERAL", text="3", blocks=VALID_BLOCKS)
    await client.api_call(
        "chat.update", json={"channel": "C_GENERAL", "ts": posted["ts"], "blocks": VALID_BLOCKS[:3]}
    )
    await client.chat_postEphemeral(
        channel="C_GENERAL", user="U_ALICE", text="3", blocks=VALID_BLOCKS
    )
    webhook = await AsyncWebhookClient(url=slack.response_url()).send(text="3", blocks=VALID_BLOCKS)
    assert (webhook.status_code, webhook.body) == (200, "ok")
    deleted = await AsyncWebhookClient(url=slack.response_url()).send_dict(
        {"delete_original": True}
    )
    assert deleted.status_code == 200
    for text, blocks in AT_THE_LIMITS:
        await client.api_call(
            "chat.postMessage", json={"channel": "C_GENERAL", **_message(text, blocks)}
        )

    assert len(slack.messages) == 1 + len(AT_THE_LIMITS)
    assert slack.messages[0].blocks == VALID_BLOCKS[:3]
    assert [e.via for e in slack.ephemerals] == [
        "chat.postEphemeral",
        "response_url",
        "response_url",
    ]
    assert all(call.response["ok"] for call in slack.calls)


@pytest.mark.parametrize(("text", "blocks", "error", "where"), REFUSED.values(), ids=REFUSED)
async def test_post_message_refuses_what_slack_refuses(
    slack: SlackStandIn,
    client: AsyncWebClient,
    text: str,
    blocks: list[dict[str, Any]],
    error: str,
    where: str,
) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.api_call(
            "chat.postMessage", json={"channel": "C_GENERAL", **_message(text, blocks)}
        )

    assert refused.value.response.status_code == 200
    assert refused.value.response["error"] == error
    assert where in " ".join(refused.value.response.get("errors", []))
    assert slack.messages == []
    (call,) = slack.calls_to("chat.postMessage")
    assert (call.status, call.response["error"]) == (200, error)
    assert "chat.postMessage {'channel': 'C_GENERAL'" in slack.summary()


async def test_update_and_ephemeral_refuse_and_keep_nothing(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    original = [_section("count 1")]
    posted = await client.chat_postMessage(channel="C_GENERAL", text="count 1", blocks=original)
    for body, error in (
        ({"text": "count 2", "blocks": [_section("")]}, "invalid_blocks"),
        ({"text": "count 2", "blocks": [_section("s" * 3000)] * 5}, "msg_blocks_too_long"),
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": ""}, "no_text"),
    ):
        with pytest.raises(SlackApiError) as refused:
            await client.api_call(
                "chat.update", json={"channel": "C_GENERAL", "ts": posted["ts"], **body}
            )
        assert refused.value.response["error"] == error

    (message,) = slack.messages
    assert (message.text, message.blocks, message.updates) == ("count 1", original, [])
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postEphemeral(
            channel="C_GENERAL", user="U_ALICE", text="x", blocks=[{"type": "carousel"}]
        )
    assert refused.value.response["errors"] == [
        "unknown block type 'carousel' [json-pointer:/blocks/0/type]"
    ]
    assert slack.ephemerals == []
    assert [(c.method, c.response["ok"]) for c in slack.calls] == [
        ("chat.postMessage", True),
        *[("chat.update", False)] * 4,
        ("chat.postEphemeral", False),
    ]


async def test_response_url_refuses_with_400_and_records_the_call(slack: SlackStandIn) -> None:
    webhook = AsyncWebhookClient(url=slack.response_url("query"))
    blank = await webhook.send(text="x", blocks=[{"type": "header", "text": _plain("")}])
    assert (blank.status_code, blank.body) == (400, "invalid_blocks")
    empty = await webhook.send_dict({"replace_original": True})
    assert (empty.status_code, empty.body) == (400, "no_text")
    too_long = await webhook.send(text="x", blocks=[_section("s" * 3000)] * 5)
    assert (too_long.status_code, too_long.body) == (400, "msg_blocks_too_long")

    assert slack.ephemerals == []
    first, *_ = calls = slack.calls_to("response_url")
    assert [(c.status, c.response["error"]) for c in calls] == [
        (400, "invalid_blocks"),
        (400, "no_text"),
        (400, "msg_blocks_too_long"),
    ]
    assert first.params["text"] == "x"
    assert first.response["errors"] == [
        "text must not be empty or blank [json-pointer:/blocks/0/text/text]"
    ]
    assert "response_url {'text': 'x'} -> 400 invalid_blocks: text must not" in slack.summary()


# -- transcript ----------------------------------------------------------------------------


async def test_transcript_shows_threads_broadcasts_files_and_ephemerals(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="C_GENERAL", text="*acme/image_tagger*")
    await client.chat_postMessage(
        channel="C_GENERAL", text="regressed", thread_ts=parent["ts"], reply_broadcast=True
    )
    await client.files_upload_v2(
        channel="C_GENERAL", content="a\nb\nc", filename="trace.txt", thread_ts=parent["ts"]
    )
    await client.chat_update(channel="C_GENERAL", ts=parent["ts"], text="*acme/image_tagger* 2")
    await AsyncWebhookClient(url=slack.response_url()).send(text="Looking &lt;up&gt;")

    assert render_conversation(slack) == (
        "#C_GENERAL\n"
        "══════════\n"
        "*acme/image_tagger* 2\n"
        "(edited)\n"
        "    ↳ regressed\n"
        "      (also sent to the channel)\n"
        "    📎 trace.txt (3 lines)\n"
        "\n"
        "Responses to the user\n"
        "═════════════════════\n"
        "[only visible to you] Looking <up>\n"
    )


def test_render_blocks_reads_like_slack() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "KeyError"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Seen <!date^1627571664^{date_short_pretty} at {time}|Jul 29> by <@U123>"
                " &lt;!channel&gt; &amp;lt;",
            },
            "fields": [{"type": "mrkdwn", "text": "*Count:*\n3"}],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "v1"}, {"type": "plain_text", "text": "v2"}],
        },
        {
            "type": "rich_text",
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": "Trace"}]},
                {
                    "type": "rich_text_preformatted",
                    "elements": [{"type": "text", "text": "line 1\nline <2>"}],
                },
            ],
        },
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Resolve"}},
                {
                    "type": "static_select",
                    "placeholder": {"type": "plain_text", "text": "Mute…"},
                    "options": [],
                },
            ],
        },
    ]
    assert render_blocks(blocks, "fallback") == (
        "KeyError\n‾‾‾‾‾‾‾‾\n"
        "Seen Jul 29 by @U123 <!channel> &lt;\n"
        "Count: 3\n"
        "v1 · v2\n"
        "Trace\n"
        "  │ line 1\n"
        "  │ line <2>\n" + "─" * 40 + "\n[Resolve] [Select: Mute…]"
    )
    assert render_blocks([], "a &amp; b") == "a & b"


# -- sample cluster ------------------------------------------------------------------------


async def test_cluster_serves_lookup_and_both_error_routes(
    cluster: SampleCluster, http: httpx.AsyncClient
) -> None:
    records = [_record("req-1", NOW_MS - HOUR_MS), _record("req-2", NOW_MS - 2 * HOUR_MS)]
    uuid = cluster.add_algorithm("hello", "world", uuid=UUID, records=records)

    lookup = await http.get("/v1/algorithms/hello/world", headers=AUTH)
    assert lookup.status_code == 200
    assert lookup.json()["id"] == uuid
    assert lookup.json()["version_info"]["semantic_version"] == "2.0.1"
    by_name = await http.get("/v1/algorithms/hello/world/errors", headers=AUTH)
    by_id = await http.get(f"/v1/algorithms/{uuid}/errors", headers=AUTH)
    assert by_name.json() == by_id.json() == records
    assert cluster.requests[-1] == ("GET", f"/v1/algorithms/{uuid}/errors")
    assert cluster.last_authorization == DEFAULT_AUTHORIZATION


async def test_cluster_resolves_owner_errors_as_an_algorithm_named_errors(
    cluster: SampleCluster, http: httpx.AsyncClient
) -> None:
    cluster.add_algorithm("hello", "world", uuid=UUID)
    not_uuid = await http.get("/v1/algorithms/hello/errors", headers=AUTH)
    assert (not_uuid.status_code, not_uuid.json()) == (404, {"error": "No such algorithm"})
    unknown_uuid = await http.get(f"/v1/algorithms/{UUID[:-1]}9/errors", headers=AUTH)
    assert (unknown_uuid.status_code, unknown_uuid.json()) == (
        404,
        {"error": {"message": "not found"}},
    )
    unknown = await http.get("/v1/algorithms/hello/nope/errors", headers=AUTH)
    assert unknown.json() == {"error": {"message": "algorithm algo://hello/nope not found"}}


async def test_cluster_checks_the_authorization_header(
    cluster: SampleCluster, http: httpx.AsyncClient
) -> None:
    cluster.add_algorithm("hello", "world")
    missing = await http.get("/v1/algorithms/hello/world/errors")
    assert (missing.status_code, missing.json()) == (
        401,
        {"error": {"message": "authorization required"}},
    )
    wrong = await http.get(
        "/v1/algorithms/hello/world/errors", headers={"Authorization": "Simple simWRONG"}
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, 2002)

    cluster.authorization = "Bearer a.b.c"
    bearer = await http.get(
        "/v1/algorithms/hello/world/errors", headers={"Authorization": "Bearer a.b.c"}
    )
    assert bearer.status_code == 200


async def test_cluster_forbidden_down_feature_off_and_injected_faults(
    cluster: SampleCluster, http: httpx.AsyncClient
) -> None:
    cluster.add_algorithm("other", "secret", uuid=UUID, forbidden=True)
    for path in ("/v1/algorithms/other/secret", f"/v1/algorithms/{UUID}/errors"):
        forbidden = await http.get(path, headers=AUTH)
        assert (forbidden.status_code, forbidden.json()["error"]["code"]) == (403, 2001)

    cluster.add_algorithm("hello", "world")
    cluster.errors_feature_enabled = False
    off = await http.get("/v1/algorithms/hello/world/errors", headers=AUTH)
    assert (off.status_code, off.json()) == (404, {"error": {"message": "not found"}})
    assert (await http.get("/v1/algorithms/hello/world", headers=AUTH)).status_code == 200
    cluster.errors_feature_enabled = True

    cluster.fail_next(502)
    assert (await http.get("/v1/algorithms/hello/world", headers=AUTH)).status_code == 502
    assert (await http.get("/v1/algorithms/hello/world", headers=AUTH)).status_code == 200

    cluster.down = True
    down = await http.get("/v1/algorithms/hello/world/errors", headers=AUTH)
    assert down.status_code == 503
    assert down.text == "<html><body>503 Service Unavailable</body></html>"


async def test_cluster_serves_only_seven_days_and_at_most_200_newest(
    cluster: SampleCluster, http: httpx.AsyncClient
) -> None:
    old = [_record(f"req-old-{n}", NOW_MS - WINDOW_MS - (n + 1) * HOUR_MS) for n in range(5)]
    cluster.add_algorithm("hello", "world", records=old)
    cluster.append_records(
        "hello", "world", [_record(f"req-{n}", NOW_MS - WINDOW_MS + n * 1000) for n in range(250)]
    )

    served = (await http.get("/v1/algorithms/hello/world/errors", headers=AUTH)).json()
    assert len(served) == MAX_RECORDS
    assert served[0]["request_id"] == "req-249"
    assert served[-1]["request_id"] == "req-50"
    assert [r["created_at"] for r in served] == sorted(
        (r["created_at"] for r in served), reverse=True
    )


async def test_load_sample_rebases_the_fixture_onto_the_clock(
    cluster: SampleCluster, http: httpx.AsyncClient
) -> None:
    assert cluster.load_sample() == SAMPLE_ALGORITHM_ID
    served = (
        await http.get(f"/v1/algorithms/{SAMPLE_OWNER}/{SAMPLE_NAME}/errors", headers=AUTH)
    ).json()

    fixture = json.loads(
        resources.files("bot.testing").joinpath("sample_errors.json").read_text("utf-8")
    )
    assert len(served) == len(fixture["records"]) == 80
    assert all("age_ms" not in record for record in served)
    assert [r["created_at"] for r in served] == [NOW_MS - r["age_ms"] for r in fixture["records"]]
    assert served == sample_records(NOW_MS)
    assert set(sample_bug_labels()) == {r["request_id"] for r in served}
    assert fixture["algorithm"] == {
        "owner": SAMPLE_OWNER,
        "name": SAMPLE_NAME,
        "id": SAMPLE_ALGORITHM_ID,
    }


# -- Slack stand-in: Home tab and memberships (reference §13) -------------------------------


async def test_views_publish_keeps_the_home_tab_and_refuses_what_slack_refuses() -> None:
    async with SlackStandIn(rate_limit=None) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        view = {"type": "home", "blocks": [{"type": "divider"}]}
        first = (await client.views_publish(user_id="U1", view=view))["view"]
        assert slack.home_views["U1"]["blocks"] == [{"type": "divider"}]
        again = (await client.views_publish(user_id="U1", view=view, hash=first["hash"]))["view"]
        assert again["id"] == first["id"]
        assert again["hash"] != first["hash"]
        for refused_view, kwargs, error in (
            (view, {"hash": first["hash"]}, "hash_conflict"),  # a newer view was published
            ({"type": "home", "blocks": [{"type": "divider"}] * 101}, {}, "invalid_blocks"),
            ({"type": "modal", "blocks": []}, {}, "invalid_arguments"),
        ):
            with pytest.raises(SlackApiError) as refused:
                await client.views_publish(user_id="U1", view=refused_view, **kwargs)
            assert refused.value.response["error"] == error


async def test_users_conversations_pages_a_users_channels_the_bot_can_see() -> None:
    memberships = {"U1": {"C_GENERAL", "C_OTHER", "G_PRIVATE", "G_SECRET"}}
    async with SlackStandIn(
        member_of=("C_GENERAL", "G_PRIVATE"), private=("G_PRIVATE", "G_SECRET"),
        memberships=memberships, rate_limit=None,
    ) as slack:  # fmt: skip
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        seen: list[str] = []
        cursor = None
        while True:
            page = await client.users_conversations(user="U1", limit=2, cursor=cursor)
            seen += [c["id"] for c in page["channels"]]
            cursor = page["response_metadata"]["next_cursor"]
            if not cursor:
                break
        # Public channels, and only the private ones the bot is in too.
        assert sorted(seen) == ["C_GENERAL", "C_OTHER", "G_PRIVATE"]
        assert (await client.users_conversations(user="U_NOBODY"))["channels"] == []


async def test_chat_get_permalink_links_a_message_it_holds() -> None:
    async with SlackStandIn(rate_limit=None) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        posted = await client.chat_postMessage(channel="C_GENERAL", text="x")
        link = await client.chat_getPermalink(channel="C_GENERAL", message_ts=posted["ts"])
        assert link["permalink"].endswith("/archives/C_GENERAL/p" + posted["ts"].replace(".", ""))
        with pytest.raises(SlackApiError) as refused:
            await client.chat_getPermalink(channel="C_GENERAL", message_ts="1.000000")
        assert refused.value.response["error"] == "message_not_found"
