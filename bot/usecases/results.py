"""What the use cases hand to the Slack layer: plain results and failures, no I/O types."""

from __future__ import annotations

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
