"""Resolve (now or in the next version), mute, reopen, take, assign and release an alert from
Slack (README: "On an alert")."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.alerts import (
    ALERT_OWNER,
    ALERT_STATE,
    OWNER_ACTIONS,
    AlertAction,
    AlertRef,
    AlertThread,
    IllegalTransition,
    act,
)


class AlertStore(Protocol):
    async def channel_alert_threads(
        self, channel_id: str, fingerprint: str
    ) -> list[AlertThread]: ...

    async def update_alert_thread(
        self,
        thread: AlertThread,
        *,
        fields: Collection[str] | None = None,
        expected: AlertThread | None = None,
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class AlertChange:
    thread: AlertThread | None
    """The alert as it is now; None when the channel has no such alert."""
    refused: str | None = None
    """Why nothing changed: the action does not apply in the alert's state (someone acted
    first) or the mute choice is unknown."""


async def find_alert(store: AlertStore, channel_id: str, ref: AlertRef) -> AlertThread | None:
    """The channel's alert `ref` names: only this channel's, whatever the ref says."""
    threads = await store.channel_alert_threads(channel_id, ref.fingerprint)
    return next((thread for thread in threads if ref.matches(thread)), None)


async def change_alert(
    store: AlertStore,
    channel_id: str,
    ref: AlertRef,
    *,
    action: AlertAction,
    user: str,
    now: datetime,
    mute: str | None = None,
    assignee: str | None = None,
) -> AlertChange:
    """Apply a person's action to the channel's alert (another channel's, another
    installation's or a forged one is not found, and nothing changes)."""
    thread = await find_alert(store, channel_id, ref)
    if thread is None:
        return AlertChange(None)
    try:
        changed = act(thread, action, user=user, now=now, mute=mute, assignee=assignee)
    except IllegalTransition as refused:
        return AlertChange(thread, str(refused))
    # Only what the action changes is written: a digest's counters (and, for an owner change,
    # a concurrent click's state) stay as they are.
    fields = ALERT_OWNER if action in OWNER_ACTIONS else ALERT_STATE
    if not await store.update_alert_thread(changed, fields=fields, expected=thread):
        # Another click (or a run) changed it since it was read: one of them wins, the other
        # is told, and the alert is redrawn as it is now.
        return AlertChange(await find_alert(store, channel_id, ref), _CHANGED_MEANWHILE)
    return AlertChange(changed)


_CHANGED_MEANWHILE = "someone else changed it at the same moment"
