"""What a query answers in the channel, and the trace reply of a new alert: planned whole.

`query_answer` turns a query's result into the parent, one reply per group (newest first, at
most `MAX_REPLIES`) and the trace files to attach, before anything is sent; the sender then
posts the plan as it is. Pure: no I/O.

A group's reply puts what a reader needs first, whatever the runtime and however long the
trace: the exception line (the header), the rest of its message, and the algorithm's own
frame closest to where it was raised; then the counts, and the trace itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from bot.errors.grouping import ErrorGroup
from bot.errors.traces import DETAIL_LINES, Runtime
from bot.slack.blocks.base import (
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    Block,
    SlackMessage,
    algorithm_link,
    code_span,
    context,
    cut,
    cut_escaped,
    date_token,
    escape,
    is_owner_name,
    plain,
    plural,
    preformatted,
    section,
)
from bot.usecases.results import QueryResult

MAX_REPLIES = 20
"""At most this many group replies under one answer; the parent says how many more."""
TRACE_BUDGET = 2800
"""Characters of trace shown inline; the full trace goes to the thread as a file."""
MAX_LINE = 1000
"""A trace line longer than this is cut at its end, so one huge line cannot crowd out the rest."""
MAX_MESSAGE_LINES_IN_TRACE = 10
"""A Python trace cut from the top keeps at most this many lines of its final message, so the
frames above it are not crowded out."""
MAX_FILE_TITLE = 250
_OWN_FRAMES_SHOWN = 5
_SUMMARY_LINES = 10
_PY_FRAME_LINE = re.compile(r'^\s*File "[^"\n]*", line \d+')


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
    keeps its start, and a Python message of many lines keeps its first ones, so the frames
    above it still show. A note says how much was cut.
    """
    if len(trace) <= budget:
        return TrimmedTrace(trace, 0, 0)
    lines = [
        line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in trace.split("\n")
    ]
    message_note = None
    if runtime is Runtime.PYTHON:
        lines, message_note = _shorten_final_message(lines)
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
    shown_lines, shown_chars = len(kept), used - 1
    if message_note is not None and message_note in kept:
        shown_lines -= 1
        shown_chars -= len(message_note) + 1
    cut_lines = trace.count("\n") + 1 - shown_lines
    cut_chars = len(trace) - shown_chars
    if keep_tail:
        kept.reverse()
        note = f"… {plural(cut_lines, 'line')} ({cut_chars:,} characters) cut above"
        return TrimmedTrace("\n".join([note, *kept]), cut_lines, cut_chars)
    note = f"… {plural(cut_lines, 'line')} ({cut_chars:,} characters) cut below"
    return TrimmedTrace("\n".join([*kept, note]), cut_lines, cut_chars)


def _shorten_final_message(lines: list[str]) -> tuple[list[str], str | None]:
    """A Python trace whose final message runs over `MAX_MESSAGE_LINES_IN_TRACE` lines, with
    only its first ones and a note in their place."""
    last_frame = max((i for i, line in enumerate(lines) if _PY_FRAME_LINE.match(line)), default=-1)
    start = last_frame + 1
    while start < len(lines) and (lines[start].startswith(" ") or not lines[start].strip()):
        start += 1  # the frame's source and caret lines
    extra = len(lines) - start - MAX_MESSAGE_LINES_IN_TRACE
    if last_frame < 0 or extra <= 0:
        return lines, None
    note = f"… {plural(extra, 'more line')} of the message (in the attached file)"
    return [*lines[: start + MAX_MESSAGE_LINES_IN_TRACE], note], note


@dataclass(frozen=True, slots=True)
class TraceFile:
    """A whole trace to upload beside a reply that shows only part of it."""

    filename: str
    title: str
    """Names the group, so a reader of the thread (and a run after a crash, looking for it
    before uploading it again) knows whose trace it is."""
    content: str
    comment: str
    snippet_type: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """One group's reply in a thread, and the file that goes with it, if any.

    A reply may wait minutes for Slack's pace when commands pour in: its blocks are held as
    their JSON text, which the garbage collector does not scan (as dicts and lists, the
    replies of a thousand waiting queries made every full collection hold the event loop for
    a few hundred milliseconds: bench/README.md), and built again when sent."""

    text: str
    blocks_json: bytes
    trace_file: TraceFile | None

    @classmethod
    def of(cls, message: SlackMessage, trace_file: TraceFile | None = None) -> Reply:
        return cls(message.text, msgspec.json.encode(message.blocks), trace_file)

    @property
    def message(self) -> SlackMessage:
        return SlackMessage(self.text, msgspec.json.decode(self.blocks_json))


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """Everything a query says in the channel, in the order it is posted."""

    parent: SlackMessage
    replies: tuple[Reply, ...]


def query_answer(
    result: QueryResult,
    requested_by: str | None = None,
    *,
    show_input: bool = False,
    web_url: str | None = None,
) -> QueryAnswer:
    """The parent and the replies of the most recent groups, built before anything is sent."""
    replies = tuple(
        group_reply(group, show_input=show_input) for group in result.groups[:MAX_REPLIES]
    )
    return QueryAnswer(query_parent(result, requested_by, web_url=web_url), replies)


def _named(result: QueryResult) -> str | None:
    """`owner/name` as the records of an `id:` query give it (their `username` is the
    algorithm's owner), when they all give the same: a pipeline's errors are passed up into
    the log of the algorithm that called it, named after the one that failed."""
    names = {
        f"{record.username}/{record.algoname}"
        for group in result.groups
        for record in (o.record for o in group.occurrences)
        if record.username and record.algoname
    }
    name = names.pop() if len(names) == 1 else None
    return name if name is not None and is_owner_name(name) else None


def query_parent(
    result: QueryResult, requested_by: str | None = None, *, web_url: str | None = None
) -> SlackMessage:
    """The message in the channel that heads a query's thread; the algorithm's name links to
    its page in the console (`web_url`)."""
    target = f"*{algorithm_link(result.target, web_url, limit=None)}*"
    known = _named(result) if result.target.startswith("id:") and web_url else None
    if known is not None:  # an id: query whose records name the algorithm
        target = f"*{algorithm_link(known, web_url)}* ({escape(result.target)})"
    window = f"matching {code_span(result.options)}" if result.options else "in the last 7 days"
    headline = (
        f":rotating_light: {target}: {plural(result.errors, 'error')} in "
        f"{plural(len(result.groups), 'group')} {window}"
    )
    lines = []
    for group in result.groups[:_SUMMARY_LINES]:
        lines.append(f"• *{group.count}×* {cut_escaped(group.headline, 140)}")
    if len(result.groups) > _SUMMARY_LINES:
        lines.append(f"• … and {plural(len(result.groups) - _SUMMARY_LINES, 'more group')}")
    blocks: list[Block] = [section(headline)]
    if lines:
        blocks.append(section("\n".join(lines)))
    notes = []
    shown = min(len(result.groups), MAX_REPLIES)
    notes.append(f"Details of the {plural(shown, 'most recent group')} in the thread")
    if len(result.groups) > MAX_REPLIES:
        notes.append(
            f"{len(result.groups) - MAX_REPLIES} more not shown: narrow with "
            "`since:` `version:` `type:`"
        )
    if result.beyond_window:
        notes.append("the API keeps only the last 7 days, so that is all there is")
    if result.skipped:
        notes.append(f"{plural(result.skipped, 'malformed record')} from the cluster left out")
    if requested_by:
        notes.append(f"asked by <@{escape(requested_by)}>")
    blocks.append(context(" · ".join(notes)))
    text = f"{result.target}: {plural(result.errors, 'error')} in " + plural(
        len(result.groups), "group"
    )
    return SlackMessage(cut_escaped(text, MAX_FALLBACK_TEXT), blocks)


def group_reply(group: ErrorGroup, *, show_input: bool = False, lead: str | None = None) -> Reply:
    """One group in a thread: the exception, the rest of its message, where the algorithm's
    own code raised it, the counts, then the latest trace (attached whole when cut).

    `lead`: mrkdwn (already escaped) said first, e.g. why a new alert was split off."""
    latest = group.latest
    parsed = latest.parsed
    record = latest.record
    title = group.headline or group.error_type
    blocks: list[Block] = []
    if lead:
        blocks.append(context(lead))
    blocks.append({"type": "header", "text": plain(cut(title, MAX_HEADER_TEXT))})
    has_trace = parsed.trace is not None and parsed.stage is None
    details = parsed.details
    if len(title) > MAX_HEADER_TEXT:  # the header lost the end of the first line
        details = f"{title}\n{details}".strip("\n")
    if details and has_trace:  # without a trace, the whole message is shown below anyway
        blocks.append(preformatted(_first_lines(details, DETAIL_LINES)))
    own = parsed.own_locations(_OWN_FRAMES_SHOWN)
    if own:
        path = " ← ".join(f"`{cut_escaped(where.replace('`', ''), 120)}`" for where in own)
        blocks.append(context(f"*Raised in your code* at {path}"))
    elif parsed.frames:
        blocks.append(context("No frame of the algorithm's own code: raised inside libraries"))
    blocks.append(context(_counts(group)))
    trace_file = None
    if parsed.trace is not None and has_trace:
        trimmed = trim_trace(parsed.trace, parsed.runtime)
        blocks.append(preformatted(trimmed.text))
        if trimmed.was_cut:
            trace_file = TraceFile(
                filename=_trace_filename(record.request_id),
                title=cut(f"Trace of {record.request_id}: {title}", MAX_FILE_TITLE),
                content=parsed.trace,
                comment=(
                    f"Full stack trace of {cut_escaped(title, 150)} "
                    f"(request {cut_escaped(record.request_id, 100)})"
                ),
                snippet_type="python" if parsed.runtime is Runtime.PYTHON else None,
            )
    else:
        stage = parsed.stage
        reason = f"the runner only named the stage {code_span(stage)}" if stage else "none sent"
        blocks.append(context(f"No stack trace ({reason}). Message:"))
        blocks.append(preformatted(cut(parsed.message or "(empty)", TRACE_BUDGET)))
    if show_input and record.input is not None:
        blocks.append(context("*Input* of the latest request (first 128 characters):"))
        blocks.append(preformatted(cut(record.input, 500) or "(empty)"))
    text = f"{group.headline} ({plural(group.count, 'occurrence')})"
    return Reply.of(SlackMessage(cut_escaped(text, MAX_FALLBACK_TEXT), blocks), trace_file)


def _counts(group: ErrorGroup) -> str:
    """Type, occurrences, versions, first and last seen, latest request: one line."""
    versions = cut_escaped(", ".join(group.versions) or "unknown", 300)
    return " · ".join(
        [
            f"*{cut_escaped(group.error_type, 200)}*",
            f"*{plural(group.count, 'occurrence')}*",
            f"versions {versions}",
            f"first {date_token(group.first_seen)}",
            f"last {date_token(group.last_seen)}",
            f"latest request `{cut_escaped(group.latest.record.request_id.replace('`', ''), 200)}`",
        ]
    )


def _first_lines(text: str, limit: int) -> str:
    lines = text.split("\n")
    shown = [cut(line, 300) for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"… {plural(len(lines) - limit, 'more line')}")
    return "\n".join(shown)


def _trace_filename(request_id: str) -> str:
    """A file name from an untrusted request id: safe characters, bounded length."""
    return f"trace-{re.sub(r'[^A-Za-z0-9._-]', '_', request_id)[:80]}.txt"


def no_errors(result: QueryResult) -> SlackMessage:
    scope = f"matching {code_span(result.options)}" if result.options else "in the last 7 days"
    text = f":white_check_mark: No errors for *{escape(result.target)}* {scope}."
    if result.beyond_window:
        text += " (The API keeps only the last 7 days.)"
    if result.skipped:
        text += f" {plural(result.skipped, 'malformed record')} from the cluster left out."
    return SlackMessage(text, [section(text)])
