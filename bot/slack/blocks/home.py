"""The Home tab's view: the user's alerts, each with a link to its thread and the take and
resolve buttons of alert parents (same `action_id`s; the value names the alert's channel too,
since a click on the Home tab comes with no channel). Within Slack's 100 blocks per view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.alerts import AlertAction, AlertRef, AlertState, AlertThread
from bot.domain.commands import COMMAND
from bot.slack.blocks.alerts import action_id
from bot.slack.blocks.base import (
    Block,
    algorithm_link,
    context,
    cut_escaped,
    date_token,
    escape,
    mention,
    plain,
    plural,
    section,
)
from bot.usecases.home import HomeAlerts

MAX_VIEW_BLOCKS = 100
HOME_PREFIX = "home:"
"""A Home-tab button's value: this prefix, the alert's channel, ":", the alert's ref."""


def home_value(thread: AlertThread) -> str:
    return f"{HOME_PREFIX}{thread.channel_id}:{AlertRef.of(thread).text}"


def parse_home_value(value: str) -> tuple[str, AlertRef] | None:
    """The channel and alert a Home-tab button names; None for anything else."""
    if not value.startswith(HOME_PREFIX):
        return None
    channel, colon, ref_text = value.removeprefix(HOME_PREFIX).partition(":")
    ref = AlertRef.parse(ref_text) if colon and channel else None
    return (channel, ref) if ref is not None else None


def _alert_blocks(thread: AlertThread, permalink: str | None, web_url: str | None) -> list[Block]:
    title = cut_escaped(thread.headline.strip() or thread.error_type or "Error", 150)
    state = ":rotating_light: regressed" if thread.state is AlertState.REGRESSED else ""
    if thread.state is AlertState.MUTED:
        state = ":mute: muted"
    owner = mention(thread.owner or "")
    facts = [
        plural(thread.count, "occurrence"),
        f"last {date_token(thread.last_seen_ms)}",
        f"in <#{escape(thread.channel_id)}>" if _is_channel_id(thread.channel_id) else "",
        f"owner {owner}" if owner else "no owner",
        state,
        f"<{permalink}|open the thread>" if permalink else "",
    ]
    text = f"*{algorithm_link(thread.algorithm, web_url)}* · {title}\n" + " · ".join(
        fact for fact in facts if fact
    )
    value = home_value(thread)
    buttons: list[Block] = [
        {"type": "button", "text": plain("Take it"), "action_id": action_id(AlertAction.TAKE),
         "value": value},
    ]  # fmt: skip
    if thread.state in (AlertState.OPEN, AlertState.REGRESSED):
        buttons.append(
            {"type": "button", "text": plain("Resolve"), "style": "primary",
             "action_id": action_id(AlertAction.RESOLVE), "value": value}
        )  # fmt: skip
    return [
        section(text),
        {"type": "actions", "block_id": value[:255], "elements": buttons},
    ]


def _is_channel_id(channel_id: str) -> bool:
    """Only a channel id Slack gave (`C…`/`G…`) is written as a `<#…>` link."""
    return channel_id[:1] in ("C", "G") and channel_id.replace("_", "").isalnum()


def home_view(
    alerts: HomeAlerts,
    permalinks: Mapping[tuple[str, str], str | None],
    *,
    notice: str | None = None,
    web_url: str | None = None,
) -> dict[str, Any]:
    """The Home tab of one user: a notice first when an action of theirs was refused."""
    blocks: list[Block] = [{"type": "header", "text": plain("Algorithm errors")}]
    if notice:
        blocks.append(section(f":warning: {escape(notice)}"))
    if alerts.empty:
        blocks.append(
            section(
                "No open alerts in your channels. A channel gets alerts when it subscribes to an "
                f"algorithm: `{COMMAND} subscribe owner/name` (`{COMMAND} help` says more)."
            )
        )
        return {"type": "home", "blocks": blocks}
    for heading, threads in (("Yours", alerts.owned), ("Open in your channels", alerts.open)):
        if not threads:
            continue
        blocks.append({"type": "header", "text": plain(f"{heading} ({len(threads)})")})
        for thread in threads:
            link = permalinks.get((thread.channel_id, thread.parent_ts))
            blocks += _alert_blocks(thread, link, web_url)
    if alerts.more:
        blocks.append(
            context(f"… and {plural(alerts.more, 'more alert')}: see them in their channels")
        )
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}
