"""Resolve, mute and reopen an alert from Slack (INTERFACE §3.2 interactive elements)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.store.models import ALERT_STATE, AlertState, AlertThread

MUTE_FOR: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "forever": None,
}
"""The mute choices of the alert's select; `None`: until someone reopens it."""


class AlertStore(Protocol):
    async def get_alert_thread(
        self, channel_id: str, algorithm: str, fingerprint: str
    ) -> AlertThread | None: ...

    async def update_alert_thread(
        self, thread: AlertThread, *, fields: Collection[str] | None = None
    ) -> bool: ...


def resolved(thread: AlertThread, user: str, now: datetime) -> AlertThread:
    return replace(
        thread, state=AlertState.RESOLVED, muted_until=None,
        state_changed_by=user, state_changed_at=now,
    )  # fmt: skip


def muted(thread: AlertThread, user: str, now: datetime, choice: str) -> AlertThread:
    """Raises KeyError for a choice that is not one of `MUTE_FOR`."""
    length = MUTE_FOR[choice]
    return replace(
        thread, state=AlertState.MUTED, muted_until=now + length if length else None,
        state_changed_by=user, state_changed_at=now,
    )  # fmt: skip


def reopened(thread: AlertThread, user: str, now: datetime) -> AlertThread:
    return replace(
        thread, state=AlertState.OPEN, muted_until=None,
        state_changed_by=user, state_changed_at=now,
    )  # fmt: skip


async def change_alert(
    store: AlertStore,
    channel_id: str,
    algorithm: str,
    fingerprint: str,
    *,
    action: str,
    user: str,
    now: datetime,
    mute: str | None = None,
) -> AlertThread | None:
    """Apply `resolve`, `mute` (with a `MUTE_FOR` choice) or `reopen`; the changed thread, or
    None when the alert is unknown (e.g. from another installation) or the choice is not."""
    thread = await store.get_alert_thread(channel_id, algorithm, fingerprint)
    if thread is None:
        return None
    if action == "resolve":
        changed = resolved(thread, user, now)
    elif action == "mute" and mute in MUTE_FOR:
        changed = muted(thread, user, now, mute)
    elif action == "reopen":
        changed = reopened(thread, user, now)
    else:
        return None
    await store.update_alert_thread(changed, fields=ALERT_STATE)  # a digest's counters stay
    return changed
