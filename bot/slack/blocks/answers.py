"""What only the user who typed a command sees: progress, failures, help.

Pure builders; the Slack layer sends them as ephemeral messages.
"""

from __future__ import annotations

from bot.domain.commands import COMMAND
from bot.slack.blocks.base import (
    MAX_FALLBACK_TEXT,
    Block,
    SlackMessage,
    code_span,
    context,
    cut,
    cut_escaped,
    escape,
    section,
)
from bot.usecases.results import LookupFailure, explain


def lookup_started(target: str) -> SlackMessage:
    return SlackMessage(f"Looking up the recent errors of {cut_escaped(target, 200)}…")


def subscribing(target: str) -> SlackMessage:
    """The ack of `subscribe`: what happens next (the check, then the confirmation)."""
    return SlackMessage(
        f"Subscribing this channel to {cut_escaped(target, 200)}: checking that the bot can read "
        "its errors; the confirmation follows in the channel…"
    )


def lookup_failed(failure: LookupFailure) -> SlackMessage:
    message, hint = explain(failure, lambda target: f"*{escape(target)}*")
    text = f":warning: {message} {hint}"
    blocks = [section(text)]
    if failure.detail:
        blocks.append(context(f"Details: {cut_escaped(failure.detail, 500)}"))
    return SlackMessage(cut(text, MAX_FALLBACK_TEXT), blocks)


def invite_me(bot_user_id: str | None, command_text: str) -> SlackMessage:
    """Answer in a private channel the bot cannot post in."""
    me = f"<@{escape(bot_user_id)}>" if bot_user_id else "the algo-errors app"
    again = code_span(f"{COMMAND} {command_text}".strip())
    text = (
        f":lock: I can't post in this channel. Invite me with `/invite` and pick {me}, "
        f"then run {again} again."
    )
    return SlackMessage(text, [section(text)])


def channel_unavailable(reason: str) -> SlackMessage:
    text = f":warning: I can't post in this channel: {escape(reason)}."
    return SlackMessage(text, [section(text)])


def partly_posted(posted: int, total: int, target: str) -> SlackMessage:
    text = (
        f":warning: Slack refused part of the answer for *{escape(target)}*: {posted} of "
        f"{total} groups are in the thread. The bot's logs say why; try again with "
        "`since:`, `version:` or `type:` to narrow it."
    )
    return SlackMessage(text, [section(text)])


def storage_unavailable() -> SlackMessage:
    text = (
        ":warning: The bot's database does not answer right now, so subscriptions and alerts "
        "cannot be read or changed; nothing was changed. Queries still work. Please try again "
        "in a few minutes."
    )
    return SlackMessage(text, [section(text)])


def slack_trouble(trouble: str) -> SlackMessage:
    """The work after a command or a click needed Slack, which failed (`sender.slack_trouble`)."""
    text = (
        f":warning: Slack is having trouble ({escape(trouble)}), so this could not be done or"
        " shown in full. Please try again in a few minutes."
    )
    return SlackMessage(text, [section(text)])


def subscribed_untold(trouble: str) -> SlackMessage:
    """A subscription made whose confirmation Slack did not take in the channel."""
    text = (
        f":warning: The subscription is made, but Slack did not take its confirmation in the"
        f" channel ({escape(trouble)}). `{COMMAND} list` shows it."
    )
    return SlackMessage(text, [section(text)])


def internal_error() -> SlackMessage:
    text = ":warning: Something went wrong on the bot's side; it is logged. Please try again."
    return SlackMessage(text, [section(text)])


_USAGE = f"""*{COMMAND}* shows an Algorithmia algorithm's recent errors, grouped by cause.
• `{COMMAND} owner/name` or `{COMMAND} id:UUID`: the errors of the last 7 days, one thread \
reply per group with its stack trace
• options: `since:6h` (`30m`, `6h`, `2d`, `1w`), `version:1.2.3`, `type:ValueError`
• `{COMMAND} subscribe owner/name [every:15m | daily:09:00 | weekdays:09:00] [tz:Europe/Berlin]`: \
an alert in this channel for each new kind of error, later occurrences in its thread
• … `[@person | @group]…` (up to 10) are notified of new alerts, regressions and outages; \
`notify:none` clears them; `min:3` announces a new kind of error once it has 3 occurrences. \
Subscribing again changes only what you name.
• On an alert: *Take it*, assign it, *Resolve*, *Resolve in next version* (told quietly until \
a newer version fails), mute, reopen
• `{COMMAND} unsubscribe owner/name` · `{COMMAND} list` · `{COMMAND} help`
Example: `{COMMAND} acme/image_tagger since:1d type:ValueError`"""


def usage(problem: str | None = None) -> SlackMessage:
    """The help message, headed by what was wrong when the command did not parse."""
    blocks: list[Block] = []
    if problem:
        blocks.append(section(f":warning: {cut_escaped(problem, 1000)}"))
    blocks.append(section(_USAGE))
    text = f"{problem}. " if problem else ""
    return SlackMessage(cut_escaped(text, 1000) + f"Usage: {COMMAND} owner/name", blocks)
