"""The `errors` command's output: a query's result as terminal text or one JSON object.

Pure: strings in, strings out. The same result a Slack answer is built from; a group shows its
headline, the rest of its message (up to `DETAIL_LINES` lines) and the algorithm's own frames.
"""

from __future__ import annotations

from typing import Any

from bot.errors.grouping import ErrorGroup
from bot.errors.records import utc_minute
from bot.errors.traces import DETAIL_LINES
from bot.usecases.results import LookupFailure, QueryResult, explain

_INDENT = "    "

_CONTROLS = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [
        *range(0x20),
        0x7F,
        *range(0x80, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
    if code not in (0x09, 0x0A)  # tab and newline
}
"""Characters a terminal acts on rather than shows (escape sequences that recolour, retitle
or rewrite the screen, a carriage return that hides a line, bidirectional overrides that
reorder it), as the text `\\x1b` a reader sees instead: the error text is the algorithm's,
and its input's, not the bot's."""


def shown(text: str) -> str:
    """`text` safe to print: `_CONTROLS` written out."""
    return text.translate(_CONTROLS)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def group_as_json(group: ErrorGroup) -> dict[str, Any]:
    parsed = group.latest.parsed
    return {
        "fingerprint": group.fingerprint,
        "error_type": group.error_type,
        "headline": group.headline,
        "details": parsed.details,
        "count": group.count,
        "request_ids": list(group.request_ids),
        "versions": list(group.versions),
        "first_seen": group.first_seen,
        "last_seen": group.last_seen,
        "own_frames": [f.location() for f in parsed.own_frames],
    }


def result_as_json(result: QueryResult) -> dict[str, Any]:
    return {
        "algorithm": result.target,
        "errors": result.errors,
        "groups": [group_as_json(g) for g in result.groups],
        "skipped_records": result.skipped,
    }


def result_as_text(result: QueryResult, *, traces: bool = False) -> str:
    """The groups, newest first; with `traces`, each group's latest trace under it."""
    scope = f"matching {result.options}" if result.options else "in the last 7 days"
    lines = [
        f"{result.target}: {_plural(result.errors, 'error')} in "
        f"{_plural(len(result.groups), 'group')} {scope}"
    ]
    if result.beyond_window:
        lines.append("(the API keeps only the last 7 days)")
    if result.skipped:
        lines.append(f"({result.skipped} malformed records from the cluster left out)")
    for number, group in enumerate(result.groups, 1):
        lines.append("")
        lines.extend(_group_lines(number, group))
        if traces:
            trace = group.latest.parsed.trace or group.latest.parsed.message
            # Split at newlines only (a lone carriage return is shown, not obeyed), a CRLF's
            # carriage return dropped.
            for line in (trace or "(no trace)").split("\n"):
                lines.append(f"{_INDENT}  " + line.removesuffix("\r"))
    return shown("\n".join(lines))


def _group_lines(number: int, group: ErrorGroup) -> list[str]:
    parsed = group.latest.parsed
    lines = [f"[{number}] {group.headline}"]
    details = parsed.details.split("\n") if parsed.details else []
    lines.extend(_INDENT + "│ " + line for line in details[:DETAIL_LINES])
    if len(details) > DETAIL_LINES:
        lines.append(_INDENT + f"│ … {_plural(len(details) - DETAIL_LINES, 'more line')}")
    lines.append(
        f"{_INDENT}{group.count}× · {group.error_type} · versions "
        f"{', '.join(group.versions) or '?'} · first {utc_minute(group.first_seen)} · "
        f"last {utc_minute(group.last_seen)}"
    )
    locations = parsed.own_locations(5)
    if locations:
        lines.append(f"{_INDENT}your code: " + " ← ".join(locations))
    lines.append(
        f"{_INDENT}latest request: {group.latest.record.request_id} · id {group.fingerprint}"
    )
    return lines


def failure_as_text(failure: LookupFailure) -> str:
    """One line: the cause, what to do, and the server's own words."""
    message, hint = explain(failure)
    detail = f" ({' '.join(failure.detail.split())})" if failure.detail else ""
    return shown(f"error: {message} {hint}{detail}")


def failure_as_json(failure: LookupFailure) -> dict[str, Any]:
    """`{"error": {"kind", "message", "hint"}}`: the message carries the server's words."""
    message, hint = explain(failure)
    if failure.detail:
        message += f" ({' '.join(failure.detail.split())})"
    return error_as_json(failure.kind.value, message, hint)


def error_as_json(kind: str, message: str, hint: str) -> dict[str, Any]:
    """What `errors --json` prints for any failure: `{"error": {"kind", "message", "hint"}}`."""
    return {"error": {"kind": kind, "message": message, "hint": hint}}
