"""The on-call workflow through the served bot and the Slack stand-in: an
owner taken, assigned and handed back; the people a subscription notifies; a threshold; and
"resolved in the next version"."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.testing.harness import SIGNING_SECRET, RunningBot, running_bot
from bot.testing.sample_cluster import fresh_record
from bot.testing.signing import sign
from bot.testing.slack_stand_in import PostedMessage, SlackStandIn
from tests.e2e.test_subscriptions_e2e import CHANNEL, _alerts

BUG = "py-notify-channel-id-int"


def _occurrence(version: str = "1.4.0") -> dict[str, Any]:
    return fresh_record(BUG, int(time.time() * 1000)) | {"algoversion": version}


async def _subscribed(bot: RunningBot, text: str = "") -> None:
    await bot.command(f"subscribe acme/image_tagger {text}".strip())
    await bot.slack.wait_for(lambda s: len(s.top_level(CHANNEL)) == 1)


async def _digest(bot: RunningBot, *records: dict[str, Any]) -> None:
    bot.cluster.append_records("acme", "image_tagger", list(records))
    await bot.digest()
    await bot.slack.wait_idle(quiet_s=0.2)


async def _clicked(bot: RunningBot, alert: PostedMessage, action: str, **kwargs: Any) -> None:
    """Click, then wait until the alert was redrawn, the click's work is done and Slack is
    quiet (on a loaded machine its thread reply can come well after the redraw)."""
    updates = len(alert.updates)
    response = await bot.click(alert, action, **kwargs)
    assert response.status_code == 200
    await bot.slack.wait_for(lambda s: len(alert.updates) > updates)
    await bot.settled(quiet_s=0.1)


@pytest.fixture
async def alerted() -> AsyncIterator[tuple[RunningBot, PostedMessage]]:
    async with running_bot() as bot:
        await _subscribed(bot)
        await _digest(bot, _occurrence())
        (alert,) = _alerts(bot.slack)
        yield bot, alert


async def test_take_assign_and_hand_back_are_shown_and_told_in_the_thread(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, alert = alerted
    assert "No owner yet" in str(alert.blocks)
    await _clicked(bot, alert, "group_take", user="U_ALICE")
    assert "Owner: <@U_ALICE> since <!date^" in str(alert.blocks)
    assert bot.slack.thread(alert.ts)[-1].text == ":raised_hand: <@U_ALICE> took this."
    await _clicked(bot, alert, "group_assign", user="U_ALICE", selected="U_BOB")
    assert "Owner: <@U_BOB>" in str(alert.blocks)
    told = bot.slack.thread(alert.ts)[-1]
    assert told.text == ":point_right: <@U_ALICE> assigned this to <@U_BOB>."
    assert not told.reply_broadcast
    # The owner is mentioned when the error comes back, and kept through resolve.
    await _digest(bot, _occurrence())
    recurrence = bot.slack.thread(alert.ts)[-1]
    assert recurrence.text.startswith("<@U_BOB> 1 new:")
    await _clicked(bot, alert, "group_resolve", user="U_BOB")
    assert "Owner: <@U_BOB>" in str(alert.blocks)
    assert "*Resolved* by <@U_BOB>" in str(alert.blocks)
    await _digest(bot, _occurrence())
    regression = bot.slack.thread(alert.ts)[-1]
    assert regression.reply_broadcast
    assert regression.text.startswith("<@U_BOB> Regression:")
    await _clicked(bot, alert, "group_release", user="U_BOB")
    assert "No owner yet" in str(alert.blocks)
    assert "<@U_BOB> handed this back" in bot.slack.thread(alert.ts)[-1].text


async def test_taking_an_alert_one_owns_changes_nothing_and_says_so(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, alert = alerted
    await _clicked(bot, alert, "group_take", user="U_ALICE")
    replies = len(bot.slack.thread(alert.ts))
    await _clicked(bot, alert, "group_take", user="U_ALICE")
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
    assert "you already own this alert" in bot.slack.ephemerals[0].text
    assert len(bot.slack.thread(alert.ts)) == replies  # no second "took this"


async def test_an_alert_assigned_to_a_bot_is_refused_and_keeps_its_owner(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    """Slack's users select lists bots and apps too: an owner must be someone the alert's
    mentions reach."""
    bot, alert = alerted
    await _clicked(bot, alert, "group_take", user="U_ALICE")
    replies = len(bot.slack.thread(alert.ts))
    bot.slack.bots.add("U_DEPLOYBOT")
    for chosen in ("U_DEPLOYBOT", "USLACKBOT"):
        told = len(bot.slack.ephemerals)
        response = await bot.click(alert, "group_assign", user="U_ALICE", selected=chosen)
        assert response.status_code == 200
        await bot.slack.wait_for(lambda s, n=told: len(s.ephemerals) == n + 1)
        assert bot.slack.ephemerals[-1].text.startswith(
            f"Nothing changed: <@{chosen}> is not a person who can be told of this alert"
        )
    await bot.settled(quiet_s=0.1)
    assert "Owner: <@U_ALICE>" in str(alert.blocks)
    assert len(bot.slack.thread(alert.ts)) == replies  # nothing told in the thread
    bot.slack.app_users.add("U_CAROL")  # who installed the app is a person all the same
    await _clicked(bot, alert, "group_assign", user="U_ALICE", selected="U_CAROL")
    assert "Owner: <@U_CAROL>" in str(alert.blocks)


async def test_the_notify_list_is_mentioned_once_the_threshold_is_crossed() -> None:
    async with running_bot() as bot:
        await _subscribed(bot, "<@U_CAROL|carol> <!subteam^S_ONCALL|@oncall> min:2")
        (confirmation,) = bot.slack.top_level(CHANNEL)
        assert "notifies 2 people and groups" in str(confirmation.blocks)
        assert "<@U_CAROL>" not in str(confirmation.blocks)  # counted, not pinged, there
        await _digest(bot, _occurrence())  # one occurrence: below min:2, nothing told
        assert _alerts(bot.slack) == []
        await _digest(bot, _occurrence())  # the first is counted again: two now
        (alert,) = _alerts(bot.slack)
        assert alert.text.startswith("<@U_CAROL> <!subteam^S_ONCALL> ")
        assert "2 occurrences" in alert.text
        await bot.command("list")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
        listed = str(bot.slack.ephemerals[0].blocks)
        assert "notifies <@U_CAROL> <!subteam^S_ONCALL>" in listed
        assert "`min:2`" in listed
        # Subscribing again with only a schedule keeps the list and the threshold.
        await bot.command("subscribe acme/image_tagger every:1h")
        await bot.slack.wait_for(lambda s: len(s.top_level(CHANNEL)) == 3)
        await bot.command("list")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 2)
        listed = str(bot.slack.ephemerals[1].blocks)
        for kept in ("`every:1h`", "<@U_CAROL>", "`min:2`"):
            assert kept in listed


async def test_a_bad_mention_is_refused_and_nothing_is_stored() -> None:
    async with running_bot() as bot:
        ack = await bot.command("subscribe acme/image_tagger <!here>")
        assert "`@here`: the bot never notifies a whole channel" in ack.json()["text"]
        await bot.slack.wait_idle(quiet_s=0.2)
        assert bot.slack.top_level(CHANNEL) == []


async def test_resolved_in_the_next_version_is_quiet_for_old_versions_and_loud_for_new(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, alert = alerted
    await _clicked(bot, alert, "group_resolve_next", user="U_ALICE")
    assert "*Resolved in the next version after 1.4.0* by <@U_ALICE>" in str(alert.blocks)
    await _digest(bot, _occurrence("1.4.0"))
    quiet = bot.slack.thread(alert.ts)[-1]
    assert "Still resolved" in str(quiet.blocks)
    assert not quiet.reply_broadcast
    assert "*Resolved in the next version after 1.4.0*" in str(alert.blocks)  # still resolved
    await _digest(bot, _occurrence("1.5.0"))
    loud = bot.slack.thread(alert.ts)[-1]
    assert loud.reply_broadcast
    assert "Regression" in loud.text
    assert "*Regressed*" in str(alert.blocks)


# -- App Home ------------------------------------------------------------------------------


def _home_text(bot: RunningBot, user: str) -> str:
    return str(bot.slack.home_views[user]["blocks"])


def _home_value(bot: RunningBot, user: str, action_id: str, channel: str = CHANNEL) -> str:
    """The value of a button of the user's Home tab, on the alert of `channel`."""
    for block in bot.slack.home_views[user]["blocks"]:
        for element in block.get("elements", []):
            value = str(element.get("value", ""))
            if element.get("action_id") == action_id and value.startswith(f"home:{channel}:"):
                return value
    raise AssertionError(f"no {action_id} for {channel} on the Home tab of {user}")


async def _clicked_home(bot: RunningBot, user: str, action_id: str, value: str) -> None:
    """Click a Home-tab button, then wait until the tab was published again."""
    before = bot.slack.home_views[user]["hash"]
    response = await bot.click_home(user, action_id, value)
    assert response.status_code == 200
    await bot.slack.wait_for(lambda s: s.home_views[user]["hash"] != before)
    await bot.settled(quiet_s=0.1)


async def _home(bot: RunningBot, user: str) -> None:
    published = bot.slack.home_views.get(user, {}).get("hash")
    response = await bot.open_home(user)
    assert response.status_code == 200
    await bot.slack.wait_for(lambda s: s.home_views.get(user, {}).get("hash") != published)


@pytest.fixture
async def two_channels() -> AsyncIterator[RunningBot]:
    """An alert in C_GENERAL and one in C_OTHER; Alice is only in C_GENERAL, Bob in both."""
    memberships = {"U_ALICE": {"C_GENERAL"}, "U_BOB": {"C_GENERAL", "C_OTHER"}}
    slack = SlackStandIn(member_of=("C_GENERAL", "C_OTHER"), memberships=memberships)
    async with slack, running_bot(slack=slack) as bot:
        for channel in (CHANNEL, "C_OTHER"):
            await bot.command("subscribe acme/image_tagger", channel=channel)
        await bot.slack.wait_for(lambda s: len(s.messages) == 2)
        await _digest(bot, _occurrence())
        assert len(_alerts(bot.slack)) == len(_alerts(bot.slack, "C_OTHER")) == 1
        yield bot


async def test_the_home_tab_lists_only_the_alerts_of_the_users_channels(
    two_channels: RunningBot,
) -> None:
    bot = two_channels
    await _home(bot, "U_ALICE")
    await _home(bot, "U_BOB")
    alice, bob = _home_text(bot, "U_ALICE"), _home_text(bot, "U_BOB")
    assert "Open in your channels (1)" in alice
    assert "<#C_GENERAL>" in alice
    assert "C_OTHER" not in alice  # never an alert of a channel she is not in
    assert "Open in your channels (2)" in bob
    assert "open the thread" in alice  # chat.getPermalink's link to the alert's thread
    assert len(bot.slack.home_views["U_ALICE"]["blocks"]) <= 100


async def test_take_on_the_home_tab_updates_the_alert_and_the_tab(
    two_channels: RunningBot,
) -> None:
    bot = two_channels
    await _home(bot, "U_ALICE")
    (alert,) = _alerts(bot.slack)
    await _clicked_home(bot, "U_ALICE", "group_take", _home_value(bot, "U_ALICE", "group_take"))
    assert "Owner: <@U_ALICE>" in str(alert.blocks)  # the alert's parent, in its channel
    assert bot.slack.thread(alert.ts)[-1].text == ":raised_hand: <@U_ALICE> took this."
    assert "Yours (1)" in _home_text(bot, "U_ALICE")


async def test_a_forged_home_click_on_another_channel_s_alert_changes_nothing(
    two_channels: RunningBot,
) -> None:
    bot = two_channels
    await _home(bot, "U_BOB")
    await _home(bot, "U_ALICE")
    other = _home_value(bot, "U_BOB", "group_resolve", "C_OTHER")  # Bob sees C_OTHER's alert …
    (alert,) = _alerts(bot.slack, "C_OTHER")
    await _clicked_home(bot, "U_ALICE", "group_resolve", other)  # … Alice, not in it, forges it
    assert "You are not a member of that alert's channel" in _home_text(bot, "U_ALICE")
    assert "*Resolved*" not in str(alert.blocks)
    assert alert.updates == []


async def test_a_cross_channel_button_value_in_a_channel_changes_nothing(
    two_channels: RunningBot,
) -> None:
    """A click in C_GENERAL whose value names C_OTHER's alert acts only on C_GENERAL's."""
    bot = two_channels
    (mine,) = _alerts(bot.slack)
    (theirs,) = _alerts(bot.slack, "C_OTHER")
    forged = copy.deepcopy(mine)
    for block in forged.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == "group_resolve":
                element["value"] = f"home:C_OTHER:{element['value']}"
    response = await bot.click(forged, "group_resolve", user="U_ALICE")
    assert response.status_code == 200
    await bot.slack.wait_idle(quiet_s=0.2)
    assert theirs.updates == []
    assert "*Resolved*" not in str(theirs.blocks)


async def test_unhandled_events_and_other_tabs_answer_200_and_url_verification_its_challenge(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, _ = alerted
    messages_tab = {"type": "app_home_opened", "user": "U_ALICE", "tab": "messages"}
    assert (await bot.event(messages_tab)).status_code == 200
    assert (await bot.event({"type": "member_joined_channel", "user": "U_X"})).status_code == 200
    body = json.dumps({"token": "t", "challenge": "3eZbrw1aB", "type": "url_verification"})
    headers = sign(SIGNING_SECRET, body, content_type="application/json")
    answer = await bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (200, {"challenge": "3eZbrw1aB"})
    await bot.slack.wait_idle(quiet_s=0.1)
    assert bot.slack.home_views == {}  # the Messages tab is not answered


async def test_the_outage_notice_mentions_the_notify_list() -> None:
    async with running_bot() as bot:
        await _subscribed(bot, "<@U_CAROL|carol>")
        bot.cluster.down = True
        for _ in range(3):
            await bot.digest()
        await bot.slack.wait_idle(quiet_s=0.1)
        (notice,) = [m for m in bot.slack.top_level(CHANNEL) if "could not reach" in m.text]
        assert notice.text.startswith("<@U_CAROL> :warning:")
