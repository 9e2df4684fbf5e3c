"""Resolve, mute and reopen an alert from Slack (INTERFACE §3.2 interactive elements)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from bot.domain.alerts import ALERT_STATE, AlertAction, AlertThread, act


class AlertStore(Protocol):
    async def find_alert_thread(
        self, channel_id: str, algorithm: str, fingerprint: str
    ) -> AlertThread | None: ...

    async def update_alert_thread(
        self, thread: AlertThread, *, fields: Collection[str] | None = None
    ) -> bool: ...


async def change_alert(
    store: AlertStore,
    channel_id: str,
    algorithm: str,
    fingerprint: str,
    *,
    action: AlertAction,
    user: str,
    now: datetime,
    mute: str | None = None,
) -> AlertThread | None:
    """Apply a person's action to the channel's alert; the changed thread, or None when the
    channel has no such alert (another channel's, another installation's, or forged).

    Raises `IllegalTransition` (nothing changed) when the action does not apply in the alert's
    state or the mute choice is unknown."""
    thread = await store.find_alert_thread(channel_id, algorithm, fingerprint)
    if thread is None:
        return None
    changed = act(thread, action, user=user, now=now, mute=mute)
    await store.update_alert_thread(changed, fields=ALERT_STATE)  # a digest's counters stay
    return changed
