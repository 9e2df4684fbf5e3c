"""Block Kit builders: what people read in Slack. Pure functions returning plain dicts.

Untrusted text (messages, traces, inputs, names) reaches mrkdwn only escaped; traces and inputs
go in rich-text preformatted blocks, which Slack does not parse for mentions or links. Every
message stays within Slack's limits (50 blocks, 3000 per section, 150 per header, and well
under the ~12k characters Slack accepts across a message's blocks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors.grouping import ErrorGroup
from bot.errors.traces import Origin, Runtime
from bot.slack.commands import COMMAND
from bot.store.models import AlertState, AlertThread, Subscription
from bot.usecases.results import FailureKind, LookupFailure, QueryResult

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 3000
MAX_REPLIES = 20
"""At most this many group replies under one answer; the parent says how many more."""
TRACE_BUDGET = 2800
"""Characters of trace shown inline; the full trace goes to the thread as a file."""
MAX_LINE = 1000
"""A trace line longer than this is cut at its end, so one huge line cannot crowd out the rest."""
_OWN_FRAMES_SHOWN = 5
_SUMMARY_LINES = 10


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message to send: fallback `text` (used for notifications) and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def escape(text: str) -> str:
    """Escape Slack's control characters (`&` first) so text can never ping, mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """Shorten to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut_escaped(text: str, limit: int) -> str:
    """Escape, then shorten without splitting an entity such as `&amp;`."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    shortened = escaped[: limit - 1]
    amp = shortened.rfind("&", max(0, len(shortened) - 5))
    if amp != -1 and ";" not in shortened[amp:]:
        shortened = shortened[:amp]
    return shortened + "…"


def date_token(epoch_ms: int) -> str:
    """A Slack date token: every reader sees the time in their own time zone."""
    seconds = epoch_ms // 1000
    fallback = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{seconds}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    """Verbatim: Slack then makes no links of bare URLs or `#channel` names in the text, so
    an error message can never make a link; our explicit `<!date…>`/`<@U…>` tokens still work."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(cut(text, MAX_SECTION_TEXT))}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(cut(t, MAX_SECTION_TEXT)) for t in texts]}


def _preformatted(text: str) -> Block:
    return {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_preformatted",
                "border": 0,
                "elements": [{"type": "text", "text": text}],
            }
        ],
    }


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


# Traces ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrimmedTrace:
    text: str
    cut_lines: int
    cut_chars: int

    @property
    def was_cut(self) -> bool:
        return self.cut_chars > 0


def trim_trace(trace: str, runtime: Runtime, budget: int = TRACE_BUDGET) -> TrimmedTrace:
    """Fit a trace into `budget` characters, keeping the end that matters.

    Python and Java print the exception that was finally raised (and Java its root causes) at
    the bottom, so they are cut from the top; Node and Ruby print the innermost frames first,
    so they are cut from the bottom. A line longer than `MAX_LINE` (a huge exception message)
    keeps its start. A note says how much was cut.
    """
    if len(trace) <= budget:
        return TrimmedTrace(trace, 0, 0)
    lines = [
        line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in trace.split("\n")
    ]
    keep_tail = runtime in (Runtime.PYTHON, Runtime.JAVA, Runtime.UNKNOWN)
    ordered = list(reversed(lines)) if keep_tail else lines
    room = budget - 80  # the note
    kept: list[str] = []
    used = 0
    for line in ordered:
        if used + len(line) + 1 > room:
            break
        kept.append(line)
        used += len(line) + 1
    if not kept:  # a budget smaller than one line: keep that line's start
        kept = [cut(ordered[0], room)]
        used = len(kept[0]) + 1
    cut_lines = len(lines) - len(kept)
    cut_chars = len(trace) - (used - 1 if kept else 0)
    if keep_tail:
        kept.reverse()
        note = f"… {_plural(cut_lines, 'line')} ({cut_chars:,} characters) cut above"
        return TrimmedTrace("\n".join([note, *kept]), cut_lines, cut_chars)
    note = f"… {_plural(cut_lines, 'line')} ({cut_chars:,} characters) cut below"
    return TrimmedTrace("\n".join([*kept, note]), cut_lines, cut_chars)


# Answers to a query ---------------------------------------------------------------------------


def lookup_started(target: str) -> SlackMessage:
    return SlackMessage(f"Looking up the recent errors of {cut_escaped(target, 200)}…")


def query_parent(result: QueryResult, requested_by: str | None = None) -> SlackMessage:
    """The message in the channel that heads a query's thread."""
    target = escape(result.target)
    window = f"matching `{escape(result.options)}`" if result.options else "in the last 7 days"
    headline = (
        f":rotating_light: *{target}*: {_plural(result.errors, 'error')} in "
        f"{_plural(len(result.groups), 'group')} {window}"
    )
    lines = []
    for group in result.groups[:_SUMMARY_LINES]:
        lines.append(f"• *{group.count}×* {cut_escaped(group.headline, 140)}")
    if len(result.groups) > _SUMMARY_LINES:
        lines.append(f"• … and {_plural(len(result.groups) - _SUMMARY_LINES, 'more group')}")
    blocks: list[Block] = [_section(headline)]
    if lines:
        blocks.append(_section("\n".join(lines)))
    notes = []
    shown = min(len(result.groups), MAX_REPLIES)
    notes.append(f"Details of the {_plural(shown, 'most recent group')} in the thread")
    if len(result.groups) > MAX_REPLIES:
        notes.append(
            f"{len(result.groups) - MAX_REPLIES} more not shown: narrow with "
            "`since:` `version:` `type:`"
        )
    if result.beyond_window:
        notes.append("the API keeps only the last 7 days, so that is all there is")
    if result.skipped:
        notes.append(f"{_plural(result.skipped, 'malformed record')} from the cluster left out")
    if requested_by:
        notes.append(f"asked by <@{escape(requested_by)}>")
    blocks.append(_context(" · ".join(notes)))
    text = f"{result.target}: {_plural(result.errors, 'error')} in " + _plural(
        len(result.groups), "group"
    )
    return SlackMessage(cut_escaped(text, MAX_FALLBACK_TEXT), blocks)


@dataclass(frozen=True, slots=True)
class GroupReply:
    message: SlackMessage
    full_trace: str | None
    """The whole trace, to attach as a file, when the message shows only part of it."""


def group_reply(group: ErrorGroup, *, show_input: bool = False) -> GroupReply:
    """One group in the thread: what, how often, where, and the latest trace."""
    latest = group.latest
    record = latest.record
    fields = [
        f"*Type*\n{cut_escaped(group.error_type, 200)}",
        f"*Occurrences*\n{group.count:,}",
        f"*Versions*\n{cut_escaped(', '.join(group.versions) or 'unknown', 500)}",
        f"*Latest request*\n{cut_escaped(record.request_id, 200)}",
        f"*First seen*\n{date_token(group.first_seen)}",
        f"*Last seen*\n{date_token(group.last_seen)}",
    ]
    blocks: list[Block] = [
        {
            "type": "header",
            "text": _plain(cut(group.headline or group.error_type, MAX_HEADER_TEXT)),
        },
        {"type": "section", "fields": [_mrkdwn(f) for f in fields]},
    ]
    own = list(dict.fromkeys(f.location() for f in latest.parsed.frames if f.origin is Origin.OWN))[
        :_OWN_FRAMES_SHOWN
    ]
    if own:
        path = " ← ".join(f"`{cut_escaped(where.replace('`', ''), 120)}`" for where in own)
        blocks.append(_context(f"*Your code* (innermost first): {path}"))
    elif latest.parsed.frames:
        blocks.append(_context("No frame of the algorithm's own code: raised inside libraries"))
    full_trace = None
    trace = latest.parsed.trace
    if trace is not None and latest.parsed.stage is None:
        trimmed = trim_trace(trace, latest.parsed.runtime)
        blocks.append(_preformatted(trimmed.text))
        if trimmed.was_cut:
            full_trace = trace
    else:
        stage = latest.parsed.stage
        reason = f"the runner only named the stage `{escape(stage)}`" if stage else "none sent"
        blocks.append(_context(f"No stack trace ({reason}). Message:"))
        blocks.append(_preformatted(cut(latest.parsed.message or "(empty)", TRACE_BUDGET)))
    if show_input and record.input is not None:
        blocks.append(_context("*Input* of the latest request (first 128 characters):"))
        blocks.append(_preformatted(cut(record.input, 500) or "(empty)"))
    text = f"{group.headline} ({_plural(group.count, 'occurrence')})"
    return GroupReply(SlackMessage(cut_escaped(text, MAX_FALLBACK_TEXT), blocks), full_trace)


def trace_file_comment(group: ErrorGroup) -> str:
    return f"Full stack trace of {escape(group.latest.record.request_id)}"


def no_errors(result: QueryResult) -> SlackMessage:
    scope = f"matching `{escape(result.options)}`" if result.options else "in the last 7 days"
    text = f":white_check_mark: No errors for *{escape(result.target)}* {scope}."
    if result.beyond_window:
        text += " (The API keeps only the last 7 days.)"
    if result.skipped:
        text += f" {_plural(result.skipped, 'malformed record')} from the cluster left out."
    return SlackMessage(text, [_section(text)])


_FAILURE_TEXT: dict[FailureKind, str] = {
    FailureKind.UNAUTHORIZED: (
        "The cluster rejected the bot's credentials. An admin of the bot should check "
        "`ALGORITHMIA_API_KEY` (a standard, non-admin key with Management Access) or "
        "`ALGORITHMIA_JWT`."
    ),
    FailureKind.FORBIDDEN: (
        "The bot's key may not read the errors of *{target}*. Use a key of the owner, or of a "
        "member of the owning organization, with Management Access turned on."
    ),
    FailureKind.ALGORITHM_NOT_FOUND: (
        "There is no algorithm *{target}* on this cluster. Check the owner and the name "
        "(both are case-sensitive)."
    ),
    FailureKind.ERROR_LOGS_DISABLED: (
        "*{target}* exists, but error logs are switched off on this cluster. A cluster admin "
        "can turn on the `algorithm-errors` feature (Admin Panel, or "
        '`PUT /v1/admin/features/algorithm-errors` with `{{"enabled": true}}`).'
    ),
    FailureKind.NOT_FOUND_BY_ID: (
        "The cluster knows no errors route for *{target}*: no algorithm has this id, or error "
        "logs are switched off on this cluster. Check the id, try `owner/name`, or ask a "
        "cluster admin to turn on the `algorithm-errors` feature."
    ),
    FailureKind.UNAVAILABLE: (
        "The Algorithmia cluster could not be reached for *{target}*. Try again in a few "
        "minutes; if it keeps failing, check `ALGORITHMIA_API_URL` and the cluster's status."
    ),
    FailureKind.BAD_RESPONSE: (
        "The cluster's answer for *{target}* could not be read. Check that "
        "`ALGORITHMIA_API_URL` points at the cluster's API."
    ),
    FailureKind.REJECTED: (
        "The cluster refused the request for *{target}*. If it keeps refusing, an admin of "
        "the bot should check its logs and the cluster's API version."
    ),
}


def lookup_failed(failure: LookupFailure) -> SlackMessage:
    text = ":warning: " + _FAILURE_TEXT[failure.kind].format(target=escape(failure.target))
    blocks = [_section(text)]
    if failure.detail:
        blocks.append(_context(f"Details: {cut_escaped(failure.detail, 500)}"))
    return SlackMessage(cut(text, MAX_FALLBACK_TEXT), blocks)


def invite_me(bot_user_id: str | None, command_text: str) -> SlackMessage:
    """Answer in a private channel the bot cannot post in."""
    me = f"<@{escape(bot_user_id)}>" if bot_user_id else "the algo-errors app"
    again = escape(f"{COMMAND} {command_text}".strip())
    text = (
        f":lock: I can't post in this channel. Invite me with `/invite` and pick {me}, "
        f"then run `{again}` again."
    )
    return SlackMessage(text, [_section(text)])


def channel_unavailable(reason: str) -> SlackMessage:
    text = f":warning: I can't post in this channel: {escape(reason)}."
    return SlackMessage(text, [_section(text)])


def partly_posted(posted: int, total: int, target: str) -> SlackMessage:
    text = (
        f":warning: Slack refused part of the answer for *{escape(target)}*: {posted} of "
        f"{total} groups are in the thread. The bot's logs say why; try again with "
        "`since:`, `version:` or `type:` to narrow it."
    )
    return SlackMessage(text, [_section(text)])


def internal_error() -> SlackMessage:
    text = ":warning: Something went wrong on the bot's side; it is logged. Please try again."
    return SlackMessage(text, [_section(text)])


# Subscriptions ----------------------------------------------------------------------------------


def _epoch_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def _in_zone(instant: datetime, zone: str) -> str:
    """`Mon 09:00` in the subscription's own time zone (the schedule's clock)."""
    try:
        return instant.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")
    except (ZoneInfoNotFoundError, ValueError):
        return instant.astimezone(UTC).strftime("%a %d %b %H:%M UTC")


def subscribed(subscription: Subscription, *, again: bool, seen: int, by: str) -> SlackMessage:
    """The confirmation in the channel, so everyone there knows what will be posted."""
    target = escape(subscription.algorithm)
    when = f"`{escape(subscription.schedule)}` ({escape(subscription.timezone)})"
    if again:
        text = f":pushpin: <@{escape(by)}> changed this channel's digest of *{target}* to {when}."
    else:
        text = (
            f":pushpin: <@{escape(by)}> subscribed this channel to *{target}*, {when}: each new "
            "kind of error gets one alert here, later occurrences go to its thread."
        )
    notes = [f"First digest {date_token(_epoch_ms(subscription.next_run_at))}"]
    if not again:
        notes.append(f"{_plural(seen, 'current error')} marked as seen")
    notes.append(f"`{COMMAND} unsubscribe {target}` to stop")
    return SlackMessage(text, [_section(text), _context(" · ".join(notes))])


def unsubscribed(algorithm: str, *, by: str) -> SlackMessage:
    text = (
        f":wave: <@{escape(by)}> unsubscribed this channel from *{escape(algorithm)}*. Its alert "
        "threads stay and are reused if the channel subscribes again."
    )
    return SlackMessage(text, [_section(text)])


def not_subscribed(algorithm: str) -> SlackMessage:
    text = (
        f"This channel is not subscribed to *{escape(algorithm)}*. "
        f"`{COMMAND} list` shows what it is subscribed to."
    )
    return SlackMessage(text, [_section(text)])


def subscription_list(subscriptions: Sequence[Subscription]) -> SlackMessage:
    """The channel's subscriptions, only for the asking user."""
    if not subscriptions:
        text = (
            "This channel has no subscriptions. Add one with "
            f"`{COMMAND} subscribe owner/name [every:15m | daily:09:00] [tz:Area/City]`."
        )
        return SlackMessage(text, [_section(text)])
    lines = []
    for subscription in subscriptions[:40]:
        line = (
            f"• *{escape(subscription.algorithm)}*: `{escape(subscription.schedule)}` "
            f"({escape(subscription.timezone)})"
        )
        if subscription.paused_reason:
            line += (
                f" · :double_vertical_bar: paused: {cut_escaped(subscription.paused_reason, 200)}"
            )
        else:
            local = _in_zone(subscription.next_run_at, subscription.timezone)
            line += f" · next {local} ({date_token(_epoch_ms(subscription.next_run_at))} for you)"
        lines.append(line)
    if len(subscriptions) > 40:
        lines.append(f"• … and {len(subscriptions) - 40} more")
    heading = f"This channel's subscriptions ({len(subscriptions)}):"
    return SlackMessage(heading, [_section(heading), _section("\n".join(lines))])


# Alerts of digests --------------------------------------------------------------------------------

RESOLVE_ACTION = "group_resolve"
MUTE_ACTION = "group_mute"
REOPEN_ACTION = "group_reopen"
MUTE_CHOICES = (
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("forever", "Until reopened"),
)
_MAX_ID = 255


def alert_key(thread: AlertThread) -> str:
    """What a button needs to find its alert thread (the channel comes with the click)."""
    return json.dumps({"a": thread.algorithm, "f": thread.fingerprint}, separators=(",", ":"))


def _state_line(thread: AlertThread, regressed: bool, mute_ended: bool) -> str:
    if mute_ended and thread.state is AlertState.OPEN:
        return ":bell: *Open*: the mute ran out; later occurrences are posted in the thread"
    if regressed:
        back = date_token(thread.last_seen_ms)
        return f":rotating_light: *Regressed*: it was resolved and came back {back}"
    changed = date_token(_epoch_ms(thread.state_changed_at)) if thread.state_changed_at else ""
    by = f" by <@{escape(thread.state_changed_by)}>" if thread.state_changed_by else ""
    if thread.state is AlertState.RESOLVED:
        return f":white_check_mark: *Resolved*{by} {changed}".rstrip()
    if thread.state is AlertState.MUTED:
        until = (
            f"until {date_token(_epoch_ms(thread.muted_until))}"
            if thread.muted_until
            else "until reopened"
        )
        return f":mute: *Muted*{by} {until}"
    return ":red_circle: *Open*: later occurrences are posted in the thread"


def alert_parent(
    thread: AlertThread, *, regressed: bool = False, mute_ended: bool = False
) -> SlackMessage:
    """The top-level alert of one kind of error; edited as its thread grows or its state
    changes. Its buttons carry `alert_key` (value) and the select its block id."""
    title = thread.headline.strip() or thread.error_type.strip() or "Error with no message"
    fields = [
        f"*Algorithm*\n{cut_escaped(thread.algorithm, 200)}",
        f"*Type*\n{cut_escaped(thread.error_type or 'unknown', 200)}",
        f"*Occurrences*\n{thread.count:,}",
        f"*Versions*\n{cut_escaped(', '.join(thread.versions) or 'unknown', 500)}",
        f"*First seen*\n{date_token(thread.first_seen_ms)}",
        f"*Last seen*\n{date_token(thread.last_seen_ms)}",
    ]
    key = alert_key(thread)
    if thread.state is AlertState.OPEN:
        elements: list[Block] = [
            {
                "type": "button",
                "text": _plain("Resolve"),
                "action_id": RESOLVE_ACTION,
                "value": key,
                "style": "primary",
            },
            {
                "type": "static_select",
                "action_id": MUTE_ACTION,
                "placeholder": _plain("Mute…"),
                "options": [
                    {"text": _plain(label), "value": value} for value, label in MUTE_CHOICES
                ],
            },
        ]
    else:
        elements = [
            {"type": "button", "text": _plain("Reopen"), "action_id": REOPEN_ACTION, "value": key}
        ]
    blocks: list[Block] = [
        {"type": "header", "text": _plain(cut(title, MAX_HEADER_TEXT))},
        {"type": "section", "fields": [_mrkdwn(f) for f in fields]},
        _context(_state_line(thread, regressed, mute_ended)),
        {"type": "actions", "block_id": f"alert:{key}"[:_MAX_ID], "elements": elements},
    ]
    text = f"{thread.algorithm}: {thread.headline} ({_plural(thread.count, 'occurrence')})"
    return SlackMessage(cut_escaped(text, MAX_FALLBACK_TEXT), blocks)


def recurrence_reply(group: ErrorGroup, *, regression: bool = False) -> SlackMessage:
    """A reply in an alert's thread: the new occurrences of this run."""
    latest = group.latest.record
    lead = (
        ":rotating_light: *Regression*: this error was resolved and is back. " if regression else ""
    )
    text = (
        f"{lead}{_plural(group.count, 'new occurrence')} · last {date_token(group.last_seen)} · "
        f"versions {cut_escaped(', '.join(group.versions) or 'unknown', 300)}"
    )
    details = f"Latest request {cut_escaped(latest.request_id, 200)}"
    fallback = f"{'Regression: ' if regression else ''}{group.count} new: {group.headline}"
    return SlackMessage(
        cut_escaped(fallback, MAX_FALLBACK_TEXT), [_section(text), _context(details)]
    )


def cluster_outage(algorithm: str, detail: str) -> SlackMessage:
    text = (
        f":warning: The last digests of *{escape(algorithm)}* could not reach the Algorithmia "
        f"cluster ({cut_escaped(detail, 300)}). The bot keeps trying and says here when it "
        "answers again; new errors are not lost meanwhile."
    )
    return SlackMessage(text, [_section(text)])


def cluster_recovered(algorithm: str) -> SlackMessage:
    text = (
        f":white_check_mark: The cluster answers again: digests of *{escape(algorithm)}* "
        "are back, with everything that happened meanwhile."
    )
    return SlackMessage(text, [_section(text)])


def alert_unknown() -> SlackMessage:
    text = "This alert is not in the bot's records any more, so it cannot be changed."
    return SlackMessage(text, [_section(text)])


# Help -----------------------------------------------------------------------------------------

_USAGE = f"""*{COMMAND}* shows an Algorithmia algorithm's recent errors, grouped by cause.
• `{COMMAND} owner/name` or `{COMMAND} id:UUID`: the errors of the last 7 days, one thread \
reply per group with its stack trace
• options: `since:6h` (`30m`, `6h`, `2d`, `1w`), `version:1.2.3`, `type:ValueError`
• `{COMMAND} subscribe owner/name [every:15m | daily:09:00 | weekdays:09:00] [tz:Europe/Berlin]`: \
an alert in this channel for each new kind of error, later occurrences in its thread
• `{COMMAND} unsubscribe owner/name` · `{COMMAND} list` · `{COMMAND} help`
Example: `{COMMAND} acme/image_tagger since:1d type:ValueError`"""


def usage(problem: str | None = None) -> SlackMessage:
    """The help message, headed by what was wrong when the command did not parse."""
    blocks: list[Block] = []
    if problem:
        blocks.append(_section(f":warning: {cut_escaped(problem, 1000)}"))
    blocks.append(_section(_USAGE))
    text = f"{problem}. " if problem else ""
    return SlackMessage(cut_escaped(text, 1000) + f"Usage: {COMMAND} owner/name", blocks)
