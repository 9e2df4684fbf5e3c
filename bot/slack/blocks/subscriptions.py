"""Subscriptions in the channel: the confirmations everyone sees, and `list`.

Pure builders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.alerts import Subscription
from bot.domain.commands import COMMAND
from bot.slack.blocks.base import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    SlackMessage,
    context,
    cut_escaped,
    date_token,
    epoch_ms,
    escape,
    mentions,
    plural,
    section,
)


def _in_zone(instant: datetime, zone: str) -> str:
    """`Mon 09:00` in the subscription's own time zone (the schedule's clock)."""
    try:
        return instant.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return instant.astimezone(UTC).strftime("%a %d %b %H:%M UTC")


def subscribed(subscription: Subscription, *, again: bool, seen: int, by: str) -> SlackMessage:
    """The confirmation in the channel, so everyone there knows what will be posted."""
    target = escape(subscription.algorithm)
    when = f"`{escape(subscription.schedule)}` ({escape(subscription.timezone)})"
    if again:
        # What the subscription now is, whichever part the command changed (schedule, `tz`,
        # `min`, who is notified): the notes below say the rest.
        text = (
            f":pushpin: <@{escape(by)}> updated this channel's subscription to *{target}*:"
            f" digests {when}."
        )
    else:
        text = (
            f":pushpin: <@{escape(by)}> subscribed this channel to *{target}*, {when}: each new "
            "kind of error gets one alert here, later occurrences go to its thread."
        )
    local = _in_zone(subscription.next_run_at, subscription.timezone)
    notes = [f"Next digest {local} ({escape(subscription.timezone)})"]
    if not again:
        notes.append(f"{plural(seen, 'current error')} marked as seen")
    notes.append(_who_and_when(subscription, listed=False))
    notes.append(f"`{COMMAND} unsubscribe {target}` to stop")
    return SlackMessage(text, [section(text), context(" · ".join(notes))])


def _who_and_when(subscription: Subscription, *, listed: bool) -> str:
    """Who its alerts notify and from how many records a new kind of error is announced.
    The channel's confirmation counts them (a mention there would notify them all); `list`,
    seen only by the asker, names them."""
    if not subscription.notify:
        who = "notifies nobody by name"
    elif listed:
        who = f"notifies {mentions(subscription.notify)}"
    else:
        count = len(subscription.notify)
        who = f"notifies {count} {'person or group' if count == 1 else 'people and groups'}"
    if subscription.min_count > 1:
        return (
            f"{who} · `min:{subscription.min_count}`: a new kind of error is announced once it "
            f"has {subscription.min_count} unreported occurrences"
        )
    return who


def unsubscribed(algorithm: str, *, by: str) -> SlackMessage:
    text = (
        f":wave: <@{escape(by)}> unsubscribed this channel from *{escape(algorithm)}*. Its alert "
        "threads stay and are reused if the channel subscribes again."
    )
    return SlackMessage(text, [section(text)])


def not_subscribed(algorithm: str) -> SlackMessage:
    text = (
        f"This channel is not subscribed to *{escape(algorithm)}*. "
        f"`{COMMAND} list` shows what it is subscribed to."
    )
    return SlackMessage(text, [section(text)])


def subscribed_as(asked: str, existing: str) -> SlackMessage:
    """The algorithm `asked` names is the one this channel is subscribed to as `existing`."""
    text = (
        f"*{escape(asked)}* is *{escape(existing)}*, which this channel is already subscribed"
        f" to: name it *{escape(existing)}* to change that subscription (two would post"
        " each alert twice)."
    )
    return SlackMessage(text, [section(text)])


LIST_BUDGET = 10_000
"""Characters of `list`'s blocks, well under the ~12k Slack accepts across a message."""


def subscription_list(subscriptions: Sequence[Subscription]) -> SlackMessage:
    """The channel's subscriptions, only for the asking user: each in full while the message
    has room (sections of whole lines), then the rest by name only, then a count — so a
    channel with hundreds of subscriptions still gets one message within Slack's limits."""
    if not subscriptions:
        text = (
            "This channel has no subscriptions. Add one with "
            f"`{COMMAND} subscribe owner/name [every:15m | daily:09:00] [tz:Area/City]`."
        )
        return SlackMessage(text, [section(text)])
    heading = f"This channel's subscriptions ({len(subscriptions)}):"
    budget = LIST_BUDGET - len(heading) - MAX_SECTION_TEXT  # the last section: names only
    sections: list[list[str]] = [[]]
    shown = 0
    for subscription in subscriptions:
        line = _listed(subscription)
        current = sections[-1]
        if len(line) + 1 > budget or len(line) >= MAX_SECTION_TEXT:
            break
        if sum(len(x) + 1 for x in current) + len(line) > MAX_SECTION_TEXT:
            if len(sections) >= MAX_BLOCKS - 2:
                break
            sections.append(current := [])
        current.append(line)
        budget -= len(line) + 1
        shown += 1
    blocks = [section(heading), *(section("\n".join(lines)) for lines in sections if lines)]
    rest = subscriptions[shown:]
    if rest:
        blocks.append(section(_names_only(rest)))
    return SlackMessage(heading, blocks)


def _listed(subscription: Subscription) -> str:
    line = (
        f"• *{escape(subscription.algorithm)}*: `{escape(subscription.schedule)}` "
        f"({escape(subscription.timezone)})"
    )
    if subscription.paused_reason:
        line += f" · :double_vertical_bar: paused: {cut_escaped(subscription.paused_reason, 200)}"
    else:
        local = _in_zone(subscription.next_run_at, subscription.timezone)
        line += f" · next {local} ({date_token(epoch_ms(subscription.next_run_at))} for you)"
    return line + " · " + _who_and_when(subscription, listed=True)


def _names_only(rest: Sequence[Subscription]) -> str:
    """`… and N more: a/b, c/d (paused), … and K others`, within one section."""
    lead = f"… and {len(rest)} more: "
    names: list[str] = []
    room = MAX_SECTION_TEXT - len(lead) - 40  # kept for the count of the others
    for subscription in rest:
        name = f"*{escape(subscription.algorithm)}*"
        if subscription.paused_reason:
            name += " (paused)"
        if len(name) + 2 > room:
            break
        names.append(name)
        room -= len(name) + 2
    text = lead + ", ".join(names)
    others = len(rest) - len(names)
    return text + (f", and {others} others" if others else "")
