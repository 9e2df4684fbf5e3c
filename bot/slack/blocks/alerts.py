"""Digest alerts: the alert parent with its buttons, thread replies and cluster notices.

Pure builders. Whatever a button needs travels in its value (`alert_key`: the fingerprint and a
digest of the algorithm's name, never text); the channel comes with the click.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.alerts import AlertAction, AlertRef, AlertState, AlertThread, actions_offered
from bot.errors.grouping import ErrorGroup
from bot.slack.blocks.base import (
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    Block,
    SlackMessage,
    algorithm_link,
    context,
    cut,
    cut_escaped,
    date_token,
    epoch_ms,
    escape,
    mention,
    mentions,
    mrkdwn,
    plain,
    plural,
    section,
)
from bot.usecases.results import FailureKind, LookupFailure, explain

ACTION_PREFIX = "group_"
"""An alert action's `action_id` is this prefix and the `AlertAction` value."""
MUTE_CHOICES = (
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("forever", "Until reopened"),
)


def action_id(action: AlertAction) -> str:
    return f"{ACTION_PREFIX}{action.value}"


def alert_key(thread: AlertThread) -> str:
    """What a button needs to find its alert thread (the channel comes with the click)."""
    return AlertRef.of(thread).text


def _state_line(thread: AlertThread, mute_ended: bool) -> str:
    changed = date_token(epoch_ms(thread.state_changed_at)) if thread.state_changed_at else ""
    who = mention(thread.state_changed_by or "")
    by = f" by {who}" if who else ""
    match thread.state:
        case AlertState.REGRESSED:
            return f":rotating_light: *Regressed*: it was resolved and came back {changed}"
        case AlertState.RESOLVED if thread.resolved_through is not None:
            version = cut_escaped(thread.resolved_through, 100)
            return (
                f":white_check_mark: *Resolved in the next version after {version}*{by} "
                f"{changed}; occurrences in {version} or older are told quietly"
            )
        case AlertState.RESOLVED:
            return f":white_check_mark: *Resolved*{by} {changed}".rstrip()
        case AlertState.MUTED:
            until = (
                f"until {date_token(epoch_ms(thread.muted_until))}"
                if thread.muted_until
                else "until reopened"
            )
            return f":mute: *Muted*{by} {until}"
        case AlertState.OPEN if mute_ended:
            return ":bell: *Open*: the mute ran out; later occurrences are posted in the thread"
    return ":red_circle: *Open*: later occurrences are posted in the thread"


def _button(action: AlertAction, label: str, key: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": plain(label),
        "action_id": action_id(action),
        "value": key,
    }
    if style:
        button["style"] = style
    return button


def _owner_line(thread: AlertThread) -> str:
    owner = mention(thread.owner or "")
    if not owner:
        return ":bust_in_silhouette: No owner yet: *Take it*, or assign it to someone"
    since = f" since {date_token(epoch_ms(thread.owner_since))}" if thread.owner_since else ""
    return f":bust_in_silhouette: Owner: {owner}{since}"


def _elements(thread: AlertThread, key: str) -> list[Block]:
    """The buttons of the actions the state machine allows to the thread as it is."""
    elements: list[Block] = []
    for action in actions_offered(thread):
        if action is AlertAction.RESOLVE:
            elements.append(_button(action, "Resolve", key, "primary"))
        elif action is AlertAction.RESOLVE_NEXT:
            elements.append(_button(action, "Resolve in next version", key))
        elif action is AlertAction.TAKE:
            elements.append(_button(action, "Take it", key))
        elif action is AlertAction.RELEASE:
            elements.append(_button(action, "Hand back", key))
        elif action is AlertAction.ASSIGN:
            elements.append(
                {
                    "type": "users_select",
                    "action_id": action_id(action),
                    "placeholder": plain("Assign to…"),
                }
            )
        elif action is AlertAction.MUTE:
            elements.append(
                {
                    "type": "static_select",
                    "action_id": action_id(action),
                    "placeholder": plain("Mute…"),
                    "options": [
                        {"text": plain(label), "value": value} for value, label in MUTE_CHOICES
                    ],
                }
            )
        else:
            elements.append(_button(action, "Reopen", key))
    return elements


def alert_parent(
    thread: AlertThread,
    *,
    mute_ended: bool = False,
    notify: Sequence[str] = (),
    web_url: str | None = None,
) -> SlackMessage:
    """The top-level alert of one kind of error; edited as its thread grows or its state
    changes. Its buttons carry `alert_key` (value) and the select its block id. `mute_ended`:
    this edit is the one that reopens it because its mute ran out (said on that edit only).
    `notify`: the subscription's notify list, mentioned when the alert is first posted (in its
    text, so Slack notifies them; an edit notifies nobody, so it is not repeated)."""
    title = thread.headline.strip() or thread.error_type.strip() or "Error with no message"
    fields = [
        f"*Algorithm*\n{algorithm_link(thread.algorithm, web_url)}",
        f"*Type*\n{cut_escaped(thread.error_type or 'unknown', 200)}",
        f"*Occurrences*\n{thread.count:,}",
        f"*Versions*\n{cut_escaped(', '.join(thread.versions) or 'unknown', 500)}",
        f"*First seen*\n{date_token(thread.first_seen_ms)}",
        f"*Last seen*\n{date_token(thread.last_seen_ms)}",
    ]
    key = alert_key(thread)
    blocks: list[Block] = [
        {"type": "header", "text": plain(cut(title, MAX_HEADER_TEXT))},
        {"type": "section", "fields": [mrkdwn(f) for f in fields]},
        context(_state_line(thread, mute_ended)),
        context(_owner_line(thread)),
        {
            "type": "actions",
            "block_id": f"alert:{key}",
            "elements": _elements(thread, key),
        },
    ]
    text = f"{thread.algorithm}: {thread.headline} ({plural(thread.count, 'occurrence')})"
    told = mentions(notify)
    if told:
        blocks.insert(1, section(f":loudspeaker: {told}"))
        return SlackMessage(f"{told} " + cut_escaped(text, MAX_FALLBACK_TEXT - 500), blocks)
    return SlackMessage(cut_escaped(text, MAX_FALLBACK_TEXT), blocks)


def split_note(earlier: AlertThread) -> str:
    """Said once, first in the thread of an alert split off an older grouping's alert."""
    return (
        ":scissors: Until now the bot counted these errors with the alert "
        f"*{cut_escaped(earlier.headline or earlier.error_type, 150)}* in this channel "
        f"(first seen {date_token(earlier.first_seen_ms)}). It now tells them apart: they are "
        "raised at another place, so they get an alert of their own."
    )


def recurrence_reply(
    group: ErrorGroup,
    thread: AlertThread | None = None,
    *,
    regression: bool = False,
    notify: Sequence[str] = (),
) -> SlackMessage:
    """A reply in an alert's thread: the new occurrences of this run, mentioning the alert's
    owner (and, for a regression, the subscription's notify list). An alert resolved in the
    next version that sees only older versions says it stays resolved, and mentions nobody."""
    latest = group.latest.record
    owner = thread.owner if thread is not None else None
    told = mentions([*([owner] if owner else []), *(n for n in notify if n != owner)])
    lead = (
        ":rotating_light: *Regression*: this error was resolved and is back. " if regression else ""
    )
    if thread is not None and thread.state is AlertState.RESOLVED and thread.resolved_through:
        told = ""  # told quietly: nobody is notified
        lead = (
            ":zzz: Still resolved: these come from version "
            f"{cut_escaped(thread.resolved_through, 100)} or older. "
        )
    if told:
        lead = f"{told} {lead}"
    text = (
        f"{lead}{plural(group.count, 'new occurrence')} · last {date_token(group.last_seen)} · "
        f"versions {cut_escaped(', '.join(group.versions) or 'unknown', 300)}"
    )
    details = f"Latest request {cut_escaped(latest.request_id, 200)}"
    fallback = f"{'Regression: ' if regression else ''}{group.count} new: {group.headline}"
    fallback = cut_escaped(fallback, MAX_FALLBACK_TEXT - 500)
    return SlackMessage(
        f"{told} {fallback}" if told else fallback, [section(text), context(details)]
    )


_UNREACHED = frozenset({FailureKind.UNAVAILABLE, FailureKind.BAD_RESPONSE})
"""Failures of the cluster itself; the others are answers about the algorithm or the key."""


def cluster_outage(
    algorithm: str,
    failure: LookupFailure,
    notify: Sequence[str] = (),
    web_url: str | None = None,
) -> SlackMessage:
    """The notice after the digests of a subscription failed `OUTAGE_NOTICE_AFTER` runs in a
    row: the cluster could not be reached, or it answered why the errors cannot be read (the
    algorithm gone, the key no longer allowed), with what to do, as a query's failure says."""
    told = mentions(notify)
    told = f"{told} " if told else ""
    link = f"*{algorithm_link(algorithm, web_url)}*"
    if failure.kind in _UNREACHED:
        text = (
            f"{told}:warning: The last digests of {link} could not reach the Algorithmia "
            f"cluster ({cut_escaped(failure.detail or failure.kind.value, 300)}). The bot keeps "
            "trying and says here when they work again; new errors are not lost meanwhile."
        )
        return SlackMessage(text, [section(text)])
    message, hint = explain(failure, lambda _: link)
    named = link in message  # most causes name the algorithm: then once is enough
    text = (
        f"{told}:warning: The last digests {'' if named else f'of {link} '}failed: {message} "
        f"{hint} The bot keeps trying and says here when they work again; "
        f"`/algo-errors unsubscribe {cut_escaped(algorithm, 200)}` stops them."
    )
    blocks = [section(text)]
    if failure.detail:  # the cluster's own words, as a query's failure shows them
        blocks.append(context(f"Details: {cut_escaped(failure.detail, 500)}"))
    return SlackMessage(text, blocks)


def cluster_recovered(algorithm: str, web_url: str | None = None) -> SlackMessage:
    text = (
        f":white_check_mark: The digests of *{algorithm_link(algorithm, web_url)}* work "
        "again, with everything that happened meanwhile."
    )
    return SlackMessage(text, [section(text)])


def owner_changed(thread: AlertThread, *, by: str) -> SlackMessage:
    """The thread reply when its owner changes (not broadcast): who took it, who assigned it
    to whom, or who handed it back."""
    actor = mention(by) or "Someone"
    owner = mention(thread.owner or "")
    if not owner:
        text = f":leftwards_arrow_with_hook: {actor} handed this back; it has no owner now."
    elif thread.owner == by:
        text = f":raised_hand: {actor} took this."
    else:
        text = f":point_right: {actor} assigned this to {owner}."
    return SlackMessage(text, [section(text)])


def alert_unknown() -> SlackMessage:
    """A click on no alert of this channel the bot knows: one since removed, or a forged one."""
    text = "The bot has no such alert in this channel, so nothing changed."
    return SlackMessage(text, [section(text)])


def not_a_person(user: str) -> SlackMessage:
    """An alert assigned to a bot, an app or a deactivated account: no one its mentions reach."""
    text = (
        f"Nothing changed: {mention(user)} is not a person who can be told of this alert (a"
        " bot, an app or a deactivated account). Assign it to someone on the team."
    )
    return SlackMessage(text, [section(text)])


def action_refused(reason: str) -> SlackMessage:
    """A click that does not apply to the alert as it is now (someone acted first)."""
    text = f"Nothing changed: {escape(reason)}. The alert now shows its current state."
    return SlackMessage(text, [section(text)])


def change_not_shown(reason: str) -> SlackMessage:
    """A click that changed the alert, which Slack would not redraw (or tell in its thread)."""
    text = f"Done: the alert is changed, but its message could not show it ({escape(reason)})."
    return SlackMessage(text, [section(text)])
