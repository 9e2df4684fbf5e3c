"""Slack's error codes that no retry can fix, in one table: what each means for the bot.

The sender turns them into `CannotPost` (answers and notices) and the digest notifier into
`ChannelGone` / `AlertGone`. Slack's own trouble (no answer, a 5xx, `fatal_error` and the
like: `sender.slack_trouble`) is retried, by the Web API client's retry handlers (429s), the
sender's post retries and the digest's next ticks; any other code is a refusal of the call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Refusal(enum.Enum):
    NOT_IN_CHANNEL = "not_in_channel"
    """The bot is not a member: it can join a public channel and try again."""
    HIDDEN = "hidden"
    """A private channel (or one the bot cannot see): only an invitation helps."""
    CHANNEL_CLOSED = "channel_closed"
    """No app may post here (archived, read-only, restricted)."""
    MESSAGE_GONE = "message_gone"
    """The message or thread was deleted."""


@dataclass(frozen=True, slots=True)
class Meaning:
    refusal: Refusal
    reason: str
    """In words a user understands."""


SLACK_REFUSALS: dict[str, Meaning] = {
    "not_in_channel": Meaning(Refusal.NOT_IN_CHANNEL, "the bot is not in the channel"),
    "channel_not_found": Meaning(Refusal.HIDDEN, "private channel"),
    "method_not_supported_for_channel_type": Meaning(Refusal.HIDDEN, "private channel"),
    "is_archived": Meaning(Refusal.CHANNEL_CLOSED, "the channel is archived"),
    "restricted_action": Meaning(
        Refusal.CHANNEL_CLOSED, "the workspace does not let apps post here"
    ),
    "restricted_action_read_only_channel": Meaning(
        Refusal.CHANNEL_CLOSED, "the channel is read-only"
    ),
    "restricted_action_thread_only_channel": Meaning(
        Refusal.CHANNEL_CLOSED, "the channel only takes replies in threads"
    ),
    "thread_not_found": Meaning(Refusal.MESSAGE_GONE, "the alert's thread was deleted"),
    "message_not_found": Meaning(Refusal.MESSAGE_GONE, "the alert message was deleted"),
}


def meaning(code: str) -> Meaning | None:
    return SLACK_REFUSALS.get(code)
