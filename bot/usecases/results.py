"""What the use cases hand to the Slack layer: plain results and failures, no I/O types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.errors.grouping import ErrorGroup


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The grouped errors of one algorithm, after the command's options were applied."""

    target: str
    """How the user named the algorithm: `owner/name` or `id:UUID`."""
    groups: tuple[ErrorGroup, ...]
    errors: int
    """Records matching the options (each counted once)."""
    options: str = ""
    """The options as typed, e.g. `since:2d`; empty for the whole window."""
    beyond_window: bool = False
    """`since` asked for more than the API's 7-day window."""
    skipped: int = 0
    """Malformed records the cluster sent, left out."""


class FailureKind(StrEnum):
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    ALGORITHM_NOT_FOUND = "algorithm_not_found"
    ERROR_LOGS_DISABLED = "error_logs_disabled"
    NOT_FOUND_BY_ID = "not_found_by_id"
    UNAVAILABLE = "unavailable"
    BAD_RESPONSE = "bad_response"
    REJECTED = "rejected"


FAILURE_EXPLANATIONS: dict[FailureKind, tuple[str, str]] = {
    FailureKind.UNAUTHORIZED: (
        "The cluster rejected the bot's credentials.",
        "An admin of the bot should check `ALGORITHMIA_API_KEY` (a standard, non-admin key with "
        "Management Access) or `ALGORITHMIA_JWT`.",
    ),
    FailureKind.FORBIDDEN: (
        "The bot's key may not read the errors of {target}.",
        "Use a key of the owner, or of a member of the owning organization, with Management "
        "Access turned on.",
    ),
    FailureKind.ALGORITHM_NOT_FOUND: (
        "There is no algorithm {target} on this cluster.",
        "Check the owner and the name (both are case-sensitive).",
    ),
    FailureKind.ERROR_LOGS_DISABLED: (
        "{target} exists, but error logs are switched off on this cluster.",
        "A cluster admin can turn on the `algorithm-errors` feature (Admin Panel, or "
        '`PUT /v1/admin/features/algorithm-errors` with `{{"enabled": true}}`).',
    ),
    FailureKind.NOT_FOUND_BY_ID: (
        "The cluster knows no errors route for {target}: no algorithm has this id, or error "
        "logs are switched off on this cluster.",
        "Check the id, try `owner/name`, or ask a cluster admin to turn on the "
        "`algorithm-errors` feature.",
    ),
    FailureKind.UNAVAILABLE: (
        "The Algorithmia cluster could not be reached for {target}.",
        "Try again in a few minutes; if it keeps failing, check `ALGORITHMIA_API_URL` and the "
        "cluster's status.",
    ),
    FailureKind.BAD_RESPONSE: (
        "The cluster's answer for {target} could not be read.",
        "Check that `ALGORITHMIA_API_URL` points at the cluster's API.",
    ),
    FailureKind.REJECTED: (
        "The cluster refused the request for {target}.",
        "If it keeps refusing, an admin of the bot should check its logs and the cluster's API "
        "version.",
    ),
}
"""Each failure's cause and what to do about it, the same in Slack and in the terminal."""


def explain(
    failure: LookupFailure, shown: Callable[[str], str] = lambda target: target
) -> tuple[str, str]:
    """The failure's cause and what to do; `shown` writes the algorithm's name (escaped and
    bold in Slack)."""
    message, hint = FAILURE_EXPLANATIONS[failure.kind]
    target = shown(failure.target)
    return message.format(target=target), hint.format(target=target)


class LookupFailure(Exception):
    """Why the errors of an algorithm could not be read; `detail` is the server's message.

    A plain exception class (not a frozen dataclass: Python sets `__traceback__` and
    `__context__` on an exception as it travels)."""

    def __init__(self, kind: FailureKind, target: str, detail: str = "") -> None:
        super().__init__(kind, target, detail)
        self.kind = kind
        self.target = target
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.target}: {self.kind.value}" + (f" ({self.detail})" if self.detail else "")
